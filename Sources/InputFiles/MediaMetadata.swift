import CZlib
import ComfyCore

/// The workflow ComfyUI's save nodes write into what they save, read back:
/// - **PNG** (`SaveImage`, `PreviewImage`): text chunks `prompt` (the API form that ran) and
///   `workflow` (the page's graph), as `tEXt`, `zTXt` or `iTXt` (compressed or not);
/// - **WebP** (`SaveAnimatedWEBP`, `SaveImageWebP`-style nodes): EXIF entries whose text is
///   `prompt:{…}` (tag 0x0110) and `workflow:{…}` (0x010F and down);
/// - **FLAC** (`SaveAudio`): Vorbis comments `prompt=…` and `workflow=…`.
/// Anything else is not a picture or sound this reads (nil).
public enum MediaMetadata {
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// What is embedded in `bytes`, or nil when they are not a PNG, WebP or FLAC file.
    public static func read(_ bytes: [UInt8]) throws(Failure) -> EmbeddedWorkflow? {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return try png(bytes) }
        if bytes.count >= 12, bytes.starts(with: Array("RIFF".utf8)), Array(bytes[8..<12]) == Array("WEBP".utf8) { return try webp(bytes) }
        if bytes.starts(with: Array("fLaC".utf8)) { return try flac(bytes) }
        return nil
    }

    // MARK: PNG

    static func png(_ bytes: [UInt8]) throws(Failure) -> EmbeddedWorkflow {
        var found = EmbeddedWorkflow(format: "PNG")
        var offset = 8
        while offset + 8 <= bytes.count {
            let length = Int(PNGImage.be32(bytes, offset))
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            let start = offset + 8
            guard length >= 0, start + length + 4 <= bytes.count else { throw Failure("the PNG is cut short in its \(type) chunk") }
            let data = Array(bytes[start..<(start + length)])
            offset = start + length + 4
            if type == "IEND" { break }
            guard let (keyword, text) = try textChunk(type, data) else { continue }
            switch keyword {
            case "prompt": found.prompt = text
            case "workflow": found.workflow = text
            default: break
            }
        }
        return found
    }

    /// A text chunk's keyword and text (nil for other chunks).
    static func textChunk(_ type: String, _ data: [UInt8]) throws(Failure) -> (String, String)? {
        guard ["tEXt", "zTXt", "iTXt"].contains(type), let nul = data.firstIndex(of: 0) else { return nil }
        let keyword = latin1(data[..<nul])
        let rest = Array(data[(nul + 1)...])
        switch type {
        case "tEXt":
            return (keyword, latin1(rest[...]))
        case "zTXt":
            guard let method = rest.first, method == 0 else { throw Failure("the PNG's \(keyword) zTXt chunk uses an unknown compression") }
            return (keyword, latin1(try inflate(Array(rest.dropFirst()), what: keyword)[...]))
        default:  // iTXt: compressed flag, method, language NUL, translated keyword NUL, text (UTF-8)
            guard rest.count >= 2 else { throw Failure("the PNG's \(keyword) iTXt chunk is cut short") }
            let compressed = rest[0] == 1
            var index = 2
            for _ in 0..<2 {
                guard let end = rest[index...].firstIndex(of: 0) else { throw Failure("the PNG's \(keyword) iTXt chunk is cut short") }
                index = end + 1
            }
            let body = Array(rest[index...])
            let text = compressed ? try inflate(body, what: keyword) : body
            return (keyword, String(decoding: text, as: UTF8.self))
        }
    }

    static func latin1(_ bytes: ArraySlice<UInt8>) -> String { String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) })) }

    /// A whole zlib stream (a text chunk's), at most 256 MB.
    static func inflate(_ data: [UInt8], what: String) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        guard comfyq_inflate_init(&stream) == Z_OK else { throw Failure("cannot start zlib") }
        defer { inflateEnd(&stream) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var status = Z_OK
        var input = data
        input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = UInt32(source.count)
            while status == Z_OK && out.count < 256 << 20 {
                buffer.withUnsafeMutableBufferPointer { target in
                    stream.next_out = target.baseAddress
                    stream.avail_out = UInt32(target.count)
                    status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    out += target[0..<(target.count - Int(stream.avail_out))]
                }
                if status == Z_BUF_ERROR && stream.avail_in == 0 { break }
            }
        }
        guard status == Z_STREAM_END else { throw Failure("the \(what) text is not a whole zlib stream (zlib \(status))") }
        return out
    }

    // MARK: WebP

    static func webp(_ bytes: [UInt8]) throws(Failure) -> EmbeddedWorkflow {
        var found = EmbeddedWorkflow(format: "WebP")
        var offset = 12
        while offset + 8 <= bytes.count {
            let type = String(decoding: bytes[offset..<(offset + 4)], as: UTF8.self)
            let length = Int(le32(bytes, offset + 4))
            let start = offset + 8
            guard start + length <= bytes.count else { throw Failure("the WebP file is cut short in its \(type) chunk") }
            if type == "EXIF" {
                for text in try exifTexts(Array(bytes[start..<(start + length)])) {
                    if text.hasPrefix("prompt:") { found.prompt = String(text.dropFirst(7)) }
                    if text.hasPrefix("workflow:") { found.workflow = String(text.dropFirst(9)) }
                }
            }
            offset = start + length + (length & 1)  // chunks are padded to an even size
        }
        return found
    }

    /// The ASCII texts of an EXIF block's first directory (a TIFF header, `Exif\0\0` before it
    /// or not).
    static func exifTexts(_ block: [UInt8]) throws(Failure) -> [String] {
        var tiff = block[...]
        if tiff.starts(with: Array("Exif".utf8) + [0, 0]) { tiff = tiff.dropFirst(6) }
        let data = Array(tiff)
        guard data.count >= 8 else { return [] }
        let little: Bool
        switch (data[0], data[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: throw Failure("the WebP file's EXIF block is not TIFF data")
        }
        func u16(_ at: Int) -> Int { little ? Int(data[at]) | Int(data[at + 1]) << 8 : Int(data[at]) << 8 | Int(data[at + 1]) }
        func u32(_ at: Int) -> Int { little ? u16(at) | u16(at + 2) << 16 : u16(at) << 16 | u16(at + 2) }
        let directory = u32(4)
        guard directory + 2 <= data.count else { throw Failure("the WebP file's EXIF block is cut short") }
        var texts: [String] = []
        for entry in 0..<u16(directory) {
            let at = directory + 2 + entry * 12
            guard at + 12 <= data.count else { throw Failure("the WebP file's EXIF block is cut short") }
            guard u16(at + 2) == 2 else { continue }  // ASCII
            let count = u32(at + 4)
            let start = count <= 4 ? at + 8 : u32(at + 8)
            guard count > 0, start + count <= data.count else { continue }
            var text = Array(data[start..<(start + count)])
            if text.last == 0 { text.removeLast() }
            texts.append(String(decoding: text, as: UTF8.self))
        }
        return texts
    }

    static func le32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }

    // MARK: FLAC

    static func flac(_ bytes: [UInt8]) throws(Failure) -> EmbeddedWorkflow {
        var found = EmbeddedWorkflow(format: "FLAC")
        var offset = 4
        var last = false
        while !last && offset + 4 <= bytes.count {
            last = bytes[offset] & 0x80 != 0
            let type = bytes[offset] & 0x7F
            let length = Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            let start = offset + 4
            guard start + length <= bytes.count else { throw Failure("the FLAC file is cut short in its metadata") }
            if type == 4 {  // VORBIS_COMMENT: vendor, then count × (length, "KEY=value"), little-endian
                var at = start
                func next() throws(Failure) -> String {
                    guard at + 4 <= start + length else { throw Failure("the FLAC file's comments are cut short") }
                    let size = Int(le32(bytes, at))
                    guard at + 4 + size <= start + length else { throw Failure("the FLAC file's comments are cut short") }
                    defer { at += 4 + size }
                    return String(decoding: bytes[(at + 4)..<(at + 4 + size)], as: UTF8.self)
                }
                _ = try next()
                guard at + 4 <= start + length else { throw Failure("the FLAC file's comments are cut short") }
                let count = Int(le32(bytes, at))
                at += 4
                for _ in 0..<count {
                    let comment = try next()
                    guard let equals = comment.firstIndex(of: "=") else { continue }
                    let key = comment[..<equals].lowercased()
                    let value = String(comment[comment.index(after: equals)...])
                    if key == "prompt" { found.prompt = value }
                    if key == "workflow" { found.workflow = value }
                }
            }
            offset = start + length
        }
        return found
    }
}

/// The zlib in use (`1.2.13`), for `comfyq --version --verbose` and `doctor`.
public enum ZlibLibrary {
    public static var version: String { String(cString: zlibVersion()) }
}
