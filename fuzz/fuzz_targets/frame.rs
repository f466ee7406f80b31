//! The frame decoder: any body decodes or fails without panicking, and what decodes
//! encodes again to a frame that decodes to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yuanlu_iso8583::Frame;
use yuanlu_iso8583::frame::split_frame;

fuzz_target!(|body: &[u8]| {
    if let Ok(frame) = Frame::decode_body(body) {
        let Ok(again) = frame.encode() else {
            panic!("a decoded frame does not encode");
        };
        let Ok(Some((again_body, _))) = split_frame(&again) else {
            panic!("an encoded frame does not split");
        };
        assert_eq!(Frame::decode_body(again_body).ok(), Some(frame));
    }
});
