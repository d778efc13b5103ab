//! DejaVu Sans (Bitstream Vera licence, see `fonts/LICENSE-DejaVu.txt`), embedded and registered
//! with plotters as `sans-serif` once per process. With plotters' `ab_glyph` feature every
//! backend measures text with the registered font, so this runs before any drawing.

use std::sync::OnceLock;

use crate::Error;

/// The family name the drawing code asks for.
pub const FAMILY: &str = "sans-serif";

static DEJAVU_SANS: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

/// Registers the embedded font (once); later calls return the first outcome.
pub fn register() -> Result<(), Error> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        [
            plotters::style::FontStyle::Normal,
            plotters::style::FontStyle::Bold,
        ]
        .into_iter()
        .all(|style| plotters::style::register_font(FAMILY, style, DEJAVU_SANS).is_ok())
    });
    if ok { Ok(()) } else { Err(Error::Font) }
}
