use serde::{Deserialize, Serialize};

/// A named colormap. The renderer holds the colour tables; the spec only names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colormap {
    /// Perceptually uniform, dark blue to yellow (matplotlib's default).
    Viridis,
    /// Perceptually uniform, black through purple to light yellow.
    Magma,
    /// Perceptually uniform and colour-vision-deficiency friendly, blue to yellow.
    Cividis,
    /// Diverging blue–white–red, for anomalies.
    Coolwarm,
}

impl Colormap {
    /// Every colormap, in a stable order.
    pub const ALL: [Colormap; 4] = [
        Colormap::Viridis,
        Colormap::Magma,
        Colormap::Cividis,
        Colormap::Coolwarm,
    ];

    /// The lowercase name used in specs.
    pub fn name(self) -> &'static str {
        match self {
            Colormap::Viridis => "viridis",
            Colormap::Magma => "magma",
            Colormap::Cividis => "cividis",
            Colormap::Coolwarm => "coolwarm",
        }
    }

    /// Looks a colormap up by its spec name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}
