//! Multipart intake as the upload handler runs it: multer under the same limits, the
//! text fields through the folder parser, file names through the sanitizer. No panic;
//! a sanitized name has no path parts or control characters.
#![no_main]

use bytes::Bytes;
use darkroom::media::name::sanitize_filename;
use darkroom::model::FolderPath;
use libfuzzer_sys::fuzz_target;
use multer::{Constraints, Multipart, SizeLimit};

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(body)]);
    let limits = SizeLimit::new().whole_stream(1 << 20).per_field(1 << 19);
    let mut form = Multipart::with_constraints(stream, "b", Constraints::new().size_limit(limits));
    futures_executor::block_on(async {
        while let Ok(Some(mut field)) = form.next_field().await {
            let name = sanitize_filename(field.file_name().unwrap_or(""), "upload");
            assert!(!name.is_empty());
            assert!(!name.contains(['/', '\\']) && !name.chars().any(char::is_control));
            if field.name() == Some("folder") {
                if let Ok(text) = field.text().await {
                    let _ = FolderPath::parse(text.trim());
                }
                continue;
            }
            while let Ok(Some(_)) = field.chunk().await {}
        }
    });
});
