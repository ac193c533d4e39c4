use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use isotach_core::Field;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::{Capability, Operator};

use crate::inference::InferenceClient;
use crate::{EngineError, ErrorSlot};

/// What an infer step writes: the output variable's name, units and long name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InferOutput {
    /// Variable name.
    pub name: String,
    /// Units.
    pub units: String,
    /// Long name.
    pub long_name: String,
}

/// Model inference on whole fields, through an [`InferenceClient`].
///
/// The operator gathers the fields of a step's `inputs` (they arrive on one worker, from
/// [`crate::operators::AssembleFields`]), hands them to the client and holds the step's capability
/// until the stitched output returns, so the frontier cannot pass the step before its output
/// exists; meanwhile it goes on with other steps, and the client batches their patches together.
/// Only the output fields leave the operator. A failure is recorded in `errors` and the step's
/// output is left out.
///
/// ```no_run
/// use std::sync::Arc;
/// use isotach_engine::inference::{InferOptions, InferenceClient};
/// use isotach_engine::operators::{Infer, InferOutput};
/// let options = InferOptions {
///     model: "ar_unet".into(),
///     model_output: None,
///     channels: 1,
///     patch_size: 256,
///     halo: 16,
///     batch_size: 8,
///     max_batch_delay: std::time::Duration::from_millis(5),
///     max_batches_in_flight: 4,
///     timeout: std::time::Duration::from_secs(30),
/// };
/// let client = Arc::new(InferenceClient::connect(&["http://127.0.0.1:8001".into()], options).unwrap());
/// let output = InferOutput { name: "ar_prob".into(), units: "1".into(), long_name: "AR probability".into() };
/// timely::example(move |scope| {
///     let fields = timely::dataflow::operators::ToStream::to_stream(Vec::<isotach_core::Field>::new(), scope);
///     fields.infer(Arc::new(vec!["ivt".into()]), output, client, Default::default());
/// });
/// ```
pub trait Infer<'scope> {
    /// Adds a field `output` for every step whose `inputs` fields have all arrived.
    fn infer(
        self,
        inputs: Arc<Vec<String>>,
        output: InferOutput,
        client: Arc<InferenceClient>,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<Field>>;
}

type Finished = (u64, Result<Field, String>);

impl<'scope> Infer<'scope> for Stream<'scope, u64, Vec<Field>> {
    fn infer(
        self,
        inputs: Arc<Vec<String>>,
        output: InferOutput,
        client: Arc<InferenceClient>,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<Field>> {
        let worker = self.scope().worker();
        self.unary_frontier::<CapacityContainerBuilder<Vec<Field>>, _, _, _>(
            Pipeline,
            "Infer",
            move |_, info| {
                let activator = Arc::new(worker.sync_activator_for(info.address.to_vec()));
                let (finished_tx, finished) = std::sync::mpsc::channel::<Finished>();
                // Steps whose inputs are still arriving, and steps at the workers.
                let mut gathering: BTreeMap<u64, (Capability<u64>, Vec<Option<Field>>)> =
                    BTreeMap::new();
                let mut running: HashMap<u64, Capability<u64>> = HashMap::new();
                move |(input, frontier), out| {
                    input.for_each_stamp(|time, data| {
                        let Some(capability) = time.retain_least(out.output_index()) else {
                            return;
                        };
                        for field in data.flat_map(|d| d.drain(..)) {
                            let Some(slot) = inputs.iter().position(|i| *i == field.variable)
                            else {
                                continue;
                            };
                            let (_, fields) = gathering
                                .entry(field.step)
                                .or_insert_with(|| (capability.clone(), vec![None; inputs.len()]));
                            fields[slot] = Some(field);
                        }
                    });
                    let complete: Vec<u64> = gathering
                        .iter()
                        .filter(|(_, (_, fields))| fields.iter().all(Option::is_some))
                        .map(|(step, _)| *step)
                        .collect();
                    for step in complete {
                        let Some((capability, fields)) = gathering.remove(&step) else {
                            continue;
                        };
                        let fields: Vec<Field> = fields.into_iter().flatten().collect();
                        let first = &fields[0];
                        let template = Field {
                            variable: output.name.clone(),
                            units: output.units.clone(),
                            long_name: output.long_name.clone(),
                            step: first.step,
                            time: first.time,
                            grid: first.grid.clone(),
                            values: Vec::new(),
                        };
                        let channels: Vec<&[f32]> =
                            fields.iter().map(|f| f.values.as_slice()).collect();
                        let (tx, activator) = (finished_tx.clone(), activator.clone());
                        running.insert(step, capability);
                        client.infer_field(
                            &channels,
                            first.grid.shape(),
                            first.grid.is_global_in_lon(),
                            move |result| {
                                let field = result.map(|values| Field { values, ..template });
                                // The operator outlives every field it sent (it holds their
                                // capabilities), so neither of these can fail while it matters.
                                let _ = tx.send((step, field));
                                let _ = activator.activate();
                            },
                        );
                    }
                    while let Ok((step, result)) = finished.try_recv() {
                        let Some(capability) = running.remove(&step) else {
                            continue;
                        };
                        match result {
                            Ok(field) => out.session(&capability).give(field),
                            Err(message) => errors.set(EngineError::Operator {
                                step,
                                region: "whole grid".into(),
                                message: format!("infer {:?}: {message}", output.name),
                            }),
                        }
                    }
                    // A step the frontier has passed will get no more inputs: one missing a
                    // field failed upstream, and that failure is already recorded.
                    gathering.retain(|step, _| frontier.less_equal(step));
                }
            },
        )
    }
}
