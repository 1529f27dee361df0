//! QR codes for the QR sign-in, rendered as inline SVG (no external service).

/// The SVG of a QR code for `data`; empty if the data cannot be encoded.
pub fn svg(data: &str) -> String {
    match qrcode::QrCode::new(data.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(220, 220)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}
