import Foundation
import CZlib

/// PNG images in memory as 8-bit RGBA, decoded and encoded with zlib: what masks and
/// thumbnails need, not a general image library. Decodes every colour type (grey, grey + alpha,
/// RGB, palette, RGBA) at every bit depth PNG allows (1, 2, 4, 8 and 16; 16-bit samples keep
/// their high byte), with `tRNS`, interlaced (Adam7) or not; every chunk's CRC is checked.
public struct PNGImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// Row-major RGBA, 4 bytes a pixel.
    public var rgba: [UInt8]
    /// Whether the file said anything about transparency (an alpha channel or `tRNS`).
    public var hadAlpha: Bool

    public init(width: Int, height: Int, rgba: [UInt8], hadAlpha: Bool = true) {
        self.width = width
        self.height = height
        self.rgba = rgba
        self.hadAlpha = hadAlpha
    }

    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Width and height from the header alone (nil: not a PNG).
    public static func size(of bytes: [UInt8]) -> (width: Int, height: Int)? {
        guard bytes.count >= 24, Array(bytes[0..<8]) == signature, Array(bytes[12..<16]) == Array("IHDR".utf8) else { return nil }
        return (Int(be32(bytes, 16)), Int(be32(bytes, 20)))
    }

    // MARK: Decoding

    public init(decoding bytes: [UInt8]) throws(Failure) {
        guard bytes.count >= 8, Array(bytes[0..<8]) == Self.signature else { throw Failure("not a PNG file") }
        var offset = 8
        var header: [UInt8] = []
        var palette: [UInt8] = []
        var transparency: [UInt8] = []
        // Where the image data lies: IDAT chunks are inflated in place, one after another.
        var data: [Range<Int>] = []
        while offset + 8 <= bytes.count {
            let length = Int(Self.be32(bytes, offset))
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            guard offset + 12 + length <= bytes.count else { throw Failure("truncated \(type) chunk") }
            let body = (offset + 8)..<(offset + 8 + length)
            let stored = Self.be32(bytes, body.upperBound)
            let computed = bytes.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress! + offset + 4, UInt32(length + 4))) }
            guard stored == computed else { throw Failure("corrupt \(type) chunk (its CRC is wrong): the file is damaged") }
            switch type {
            case "IHDR": header = Array(bytes[body])
            case "PLTE": palette = Array(bytes[body])
            case "tRNS": transparency = Array(bytes[body])
            case "IDAT": data.append(body)
            default: break
            }
            offset += 12 + length
            if type == "IEND" { break }
        }
        guard header.count == 13 else { throw Failure("no IHDR chunk") }
        guard !data.isEmpty else { throw Failure("no image data (IDAT chunk)") }
        let width = Int(Self.be32(header, 0))
        let height = Int(Self.be32(header, 4))
        let depth = Int(header[8])
        let colour = header[9]
        guard width > 0, height > 0, width <= 16384, height <= 16384 else { throw Failure("unsupported size \(width)×\(height)") }
        guard header[12] <= 1 else { throw Failure("unknown interlace method \(header[12])") }
        let channels: Int
        let depths: [Int]
        switch colour {
        case 0: (channels, depths) = (1, [1, 2, 4, 8, 16])
        case 2: (channels, depths) = (3, [8, 16])
        case 3: (channels, depths) = (1, [1, 2, 4, 8])
        case 4: (channels, depths) = (2, [8, 16])
        case 6: (channels, depths) = (4, [8, 16])
        default: throw Failure("unknown colour type \(colour)")
        }
        guard depths.contains(depth) else { throw Failure("bit depth \(depth) is not valid for colour type \(colour)") }
        let format = Format(colour: colour, depth: depth, channels: channels, palette: palette, transparency: transparency)
        // One pass for a plain image; Adam7's seven for an interlaced one, each a small image of
        // its own (filtered on its own), whose pixels are then spread over the whole.
        let passes = header[12] == 1 ? Self.adam7 : [Pass(x: 0, y: 0, dx: 1, dy: 1)]
        let sizes = passes.map { $0.size(width: width, height: height) }
        let expected = sizes.reduce(0) { $0 + ($1.width == 0 || $1.height == 0 ? 0 : (format.stride($1.width) + 1) * $1.height) }
        let raw = try Self.inflate(bytes, ranges: data, expected: expected)
        guard raw.count >= expected else { throw Failure("image data too short") }
        if passes.count == 1 {
            let pixels = Self.unfilter(raw, stride: format.stride(width), height: height, bytesPerPixel: format.bytesPerPixel)
            self.init(width: width, height: height, rgba: try format.rgba(pixels, width: width, height: height), hadAlpha: format.hasAlpha)
            return
        }
        var rgba = [UInt8](repeating: 0, count: width * height * 4)
        var start = 0
        for (pass, size) in zip(passes, sizes) where size.width > 0 && size.height > 0 {
            let stride = format.stride(size.width)
            let count = (stride + 1) * size.height
            let pixels = Self.unfilter(Array(raw[start..<(start + count)]), stride: stride, height: size.height, bytesPerPixel: format.bytesPerPixel)
            start += count
            let part = try format.rgba(pixels, width: size.width, height: size.height)
            for y in 0..<size.height {
                let row = (pass.y + y * pass.dy) * width
                for x in 0..<size.width {
                    let from = (y * size.width + x) * 4
                    let to = (row + pass.x + x * pass.dx) * 4
                    rgba[to..<(to + 4)] = part[from..<(from + 4)]
                }
            }
        }
        self.init(width: width, height: height, rgba: rgba, hadAlpha: format.hasAlpha)
    }

    /// One pass of an interlaced image: the pixels from (x, y) every dx columns and dy rows.
    struct Pass {
        var x, y, dx, dy: Int
        func size(width: Int, height: Int) -> (width: Int, height: Int) {
            (max(0, (width - x + dx - 1) / dx), max(0, (height - y + dy - 1) / dy))
        }
    }

    /// Adam7's seven passes, in the order their data is stored.
    static let adam7 = [
        Pass(x: 0, y: 0, dx: 8, dy: 8), Pass(x: 4, y: 0, dx: 8, dy: 8), Pass(x: 0, y: 4, dx: 4, dy: 8), Pass(x: 2, y: 0, dx: 4, dy: 4),
        Pass(x: 0, y: 2, dx: 2, dy: 4), Pass(x: 1, y: 0, dx: 2, dy: 2), Pass(x: 0, y: 1, dx: 1, dy: 2),
    ]

    /// How the samples of one image are laid out, from its header, `PLTE` and `tRNS`.
    struct Format {
        var colour: UInt8
        var depth: Int
        var channels: Int
        var palette: [UInt8]
        var transparency: [UInt8]

        /// Bytes in a row of `width` pixels (without the filter byte).
        func stride(_ width: Int) -> Int { (width * channels * depth + 7) / 8 }
        /// The distance filters look back: a whole pixel, at least a byte.
        var bytesPerPixel: Int { max(1, channels * depth / 8) }
        var hasAlpha: Bool { colour == 4 || colour == 6 || !transparency.isEmpty }

        /// Unfiltered rows to RGBA. The common 8-bit truecolour cases in tight loops; the others
        /// sample by sample.
        func rgba(_ pixels: [UInt8], width: Int, height: Int) throws(Failure) -> [UInt8] {
            let count = width * height
            if colour == 6 && depth == 8 { return pixels }
            if colour == 2 && depth == 8 && transparency.isEmpty {
                return [UInt8](unsafeUninitializedCapacity: count * 4) { target, initialized in
                    pixels.withUnsafeBufferPointer { source in
                        var s = source.baseAddress!
                        var t = target.baseAddress!
                        for _ in 0..<count {
                            t[0] = s[0]
                            t[1] = s[1]
                            t[2] = s[2]
                            t[3] = 255
                            s += 3
                            t += 4
                        }
                    }
                    initialized = count * 4
                }
            }
            return try PNGImage.expand(
                pixels, width: width, height: height, stride: stride(width), colour: colour, depth: depth, palette: palette, transparency: transparency)
        }
    }

    /// Any other layout to RGBA: samples of 1, 2, 4 or 16 bits (16-bit ones keep their high
    /// byte; grey below 8 bits is scaled to 0–255), palettes, grey, and `tRNS` keys.
    static func expand(
        _ pixels: [UInt8], width: Int, height: Int, stride: Int, colour: UInt8, depth: Int, palette: [UInt8], transparency: [UInt8]
    ) throws(Failure) -> [UInt8] {
        let channels = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][Int(colour)] ?? 1
        let maximum = (1 << depth) - 1
        /// Sample `index` of row `row`, at full precision.
        func sample(_ row: Int, _ index: Int) -> Int {
            let base = row * stride
            switch depth {
            case 16: return Int(pixels[base + index * 2]) << 8 | Int(pixels[base + index * 2 + 1])
            case 8: return Int(pixels[base + index])
            default:
                let bit = index * depth
                let byte = Int(pixels[base + bit / 8])
                return (byte >> (8 - depth - bit % 8)) & maximum
            }
        }
        func eight(_ value: Int) -> UInt8 { depth == 16 ? UInt8(value >> 8) : UInt8(value * 255 / maximum) }
        let key: [Int]? = transparency.count >= 2 * channels && (colour == 0 || colour == 2)
            ? (0..<channels).map { Int(transparency[$0 * 2]) << 8 | Int(transparency[$0 * 2 + 1]) } : nil
        var rgba = [UInt8](repeating: 255, count: width * height * 4)
        for y in 0..<height {
            for x in 0..<width {
                let o = (y * width + x) * 4
                let first = x * channels
                switch colour {
                case 0:
                    let value = sample(y, first)
                    let grey = eight(value)
                    (rgba[o], rgba[o + 1], rgba[o + 2]) = (grey, grey, grey)
                    if let key, value == key[0] { rgba[o + 3] = 0 }
                case 2:
                    let values = (sample(y, first), sample(y, first + 1), sample(y, first + 2))
                    (rgba[o], rgba[o + 1], rgba[o + 2]) = (eight(values.0), eight(values.1), eight(values.2))
                    if let key, values.0 == key[0], values.1 == key[1], values.2 == key[2] { rgba[o + 3] = 0 }
                case 3:
                    let entry = sample(y, first)
                    guard entry * 3 + 2 < palette.count else { throw Failure("palette index \(entry) out of range") }
                    (rgba[o], rgba[o + 1], rgba[o + 2]) = (palette[entry * 3], palette[entry * 3 + 1], palette[entry * 3 + 2])
                    if entry < transparency.count { rgba[o + 3] = transparency[entry] }
                case 4:
                    let grey = eight(sample(y, first))
                    (rgba[o], rgba[o + 1], rgba[o + 2], rgba[o + 3]) = (grey, grey, grey, eight(sample(y, first + 1)))
                default:  // 6 at 16 bits
                    for channel in 0..<4 { rgba[o + channel] = eight(sample(y, first + channel)) }
                }
            }
        }
        return rgba
    }

    /// Undoes PNG's per-row filters (none, sub, up, average, Paeth), one tight loop per filter.
    static func unfilter(_ raw: [UInt8], stride: Int, height: Int, bytesPerPixel bpp: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: stride * height)
        raw.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                for row in 0..<height {
                    let filter = input[row * (stride + 1)]
                    let source = input.baseAddress! + row * (stride + 1) + 1
                    let target = output.baseAddress! + row * stride
                    let above: UnsafeMutablePointer<UInt8>? = row > 0 ? target - stride : nil
                    switch (filter, above) {
                    case (1, _):
                        for x in 0..<stride { target[x] = source[x] &+ (x >= bpp ? target[x - bpp] : 0) }
                    case (2, let above?):
                        for x in 0..<stride { target[x] = source[x] &+ above[x] }
                    case (3, _):
                        for x in 0..<stride {
                            let left = x >= bpp ? Int(target[x - bpp]) : 0
                            let up = above.map { Int($0[x]) } ?? 0
                            target[x] = source[x] &+ UInt8((left + up) >> 1)
                        }
                    case (4, let above?):
                        for x in 0..<stride {
                            let left = x >= bpp ? Int(target[x - bpp]) : 0
                            let up = Int(above[x])
                            let upLeft = x >= bpp ? Int(above[x - bpp]) : 0
                            let estimate = left + up - upLeft
                            let (a, b, c) = (abs(estimate - left), abs(estimate - up), abs(estimate - upLeft))
                            target[x] = source[x] &+ UInt8(a <= b && a <= c ? left : (b <= c ? up : upLeft))
                        }
                    case (4, nil):  // Paeth on the first row is sub
                        for x in 0..<stride { target[x] = source[x] &+ (x >= bpp ? target[x - bpp] : 0) }
                    default:  // none, and up on the first row
                        target.update(from: source, count: stride)
                    }
                }
            }
        }
        return out
    }

    /// Inflates the zlib stream split over `ranges` of `bytes` (the IDAT chunks), without copying them.
    static func inflate(_ bytes: [UInt8], ranges: [Range<Int>], expected: Int) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        guard comfyq_inflate_init(&stream) == Z_OK else { throw Failure("cannot start zlib") }
        defer { inflateEnd(&stream) }
        var status = Z_OK
        var produced = 0
        let out = [UInt8](unsafeUninitializedCapacity: max(expected, 1)) { target, initialized in
            bytes.withUnsafeBufferPointer { source in
                stream.next_out = target.baseAddress
                stream.avail_out = UInt32(target.count)
                for range in ranges where status == Z_OK {
                    stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress! + range.lowerBound)
                    stream.avail_in = UInt32(range.count)
                    while stream.avail_in > 0 && stream.avail_out > 0 && status == Z_OK {
                        status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    }
                }
            }
            produced = Int(stream.total_out)
            // What zlib did not fill (a short stream) is zero, not garbage: the length check follows.
            if produced < target.count { (target.baseAddress! + produced).initialize(repeating: 0, count: target.count - produced) }
            initialized = target.count
        }
        guard status == Z_STREAM_END || status == Z_OK || (status == Z_BUF_ERROR && stream.avail_out == 0) else {
            throw Failure("corrupt image data (zlib \(status))")
        }
        return produced == out.count ? out : Array(out.prefix(produced))
    }

    // MARK: Encoding

    /// The image as a PNG, RGBA or RGB when it has no alpha (filter none, zlib at `level`: 6, or 1 where speed matters more),
    /// with `text` in `tEXt` chunks (keyword, NUL, text), as ComfyUI stores the prompt.
    public func encoded(level: Int32 = 6, text: [String: String] = [:]) -> [UInt8] {
        // An image without transparency is written as RGB, as ComfyUI writes its outputs: a
        // quarter less to compress and store.
        let channels = hadAlpha ? 4 : 3
        let rowBytes = width * channels
        let raw = [UInt8](unsafeUninitializedCapacity: (rowBytes + 1) * height) { target, initialized in
            rgba.withUnsafeBufferPointer { source in
                var t = target.baseAddress!
                var s = source.baseAddress!
                for _ in 0..<height {
                    t[0] = 0  // filter: none
                    t += 1
                    if channels == 4 {
                        t.update(from: s, count: rowBytes)
                        t += rowBytes
                        s += rowBytes
                    } else {
                        for _ in 0..<width {
                            t[0] = s[0]
                            t[1] = s[1]
                            t[2] = s[2]
                            t += 3
                            s += 4
                        }
                    }
                }
            }
            initialized = (rowBytes + 1) * height
        }
        let compressed = Self.deflate(raw, level: level)
        var out = Self.signature
        var header = Self.bytes32(UInt32(width)) + Self.bytes32(UInt32(height))
        header += [8, hadAlpha ? 6 : 2, 0, 0, 0]
        Self.chunk("IHDR", header, into: &out)
        for (keyword, value) in text.sorted(by: { $0.key < $1.key }) { Self.chunk("tEXt", Array(keyword.utf8) + [0] + Array(value.utf8), into: &out) }
        Self.chunk("IDAT", compressed, into: &out)
        Self.chunk("IEND", [], into: &out)
        return out
    }

    /// zlib-compresses `data` with a window and memory sized to it: a small image does not pay
    /// for the 256 KB of state a full window needs (most of a 64 × 64 image's encoding time).
    static func deflate(_ data: [UInt8], level: Int32) -> [UInt8] {
        var bits: Int32 = 9
        while bits < 15 && (1 << bits) < data.count { bits += 1 }
        var stream = z_stream()
        guard comfyq_deflate_init2(&stream, level, bits, max(1, min(8, bits - 7))) == Z_OK else { return [] }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, UInt(data.count)))
        return [UInt8](unsafeUninitializedCapacity: bound) { target, initialized in
            data.withUnsafeBufferPointer { source in
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
                stream.avail_in = UInt32(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = UInt32(target.count)
                _ = CZlib.deflate(&stream, Z_FINISH)  // the bound fits the whole stream: one call ends it
            }
            initialized = Int(stream.total_out)
        }
    }

    static func chunk(_ type: String, _ data: [UInt8], into out: inout [UInt8]) {
        out += bytes32(UInt32(data.count))
        let typed = Array(type.utf8) + data
        out += typed
        let crc = typed.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, UInt32($0.count))) }
        out += bytes32(crc)
    }

    static func be32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    static func bytes32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
}
