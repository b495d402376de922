//! Examples for the document, from the spec: an image item with its variants.

use serde_json::{Value, json};

/// The spec's item, as Darkroom answers it once the image is processed.
pub fn full_item() -> Value {
    json!({
        "id": "media_0Oqzd1Tb3f9KxQ2L",
        "filename": "product.jpg",
        "mimeType": "image/jpeg",
        "size": 245000,
        "width": 1920,
        "height": 1080,
        "alt": "Product showcase",
        "title": "Product Image",
        "description": "High-quality product photo",
        "url": "/uploads/2026/03/0Oqzd1TbAbCdEfGh.jpg",
        "folder": "/images/products",
        "focalX": 50,
        "focalY": 50,
        "createdAt": "2026-03-26T10:30:00Z",
        "status": "ready",
        "variants": [
            {"width": 1200, "height": 675, "url": "/uploads/2026/03/0Oqzd1TbAbCdEfGh-1200.webp", "size": 91520},
            {"width": 800, "height": 450, "url": "/uploads/2026/03/0Oqzd1TbAbCdEfGh-800.webp", "size": 48012},
            {"width": 400, "height": 225, "url": "/uploads/2026/03/0Oqzd1TbAbCdEfGh-400.webp", "size": 14811},
            {"width": 150, "height": 84, "url": "/uploads/2026/03/0Oqzd1TbAbCdEfGh-150.webp", "size": 2890}
        ],
        "thumbhash": "3OcRJYB4d3h/iIeHeEh3eIhw+j2w",
        "dominantColor": "#7d6b52"
    })
}
