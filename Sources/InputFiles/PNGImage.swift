import Foundation
import CZlib

/// PNG images in memory as 8-bit RGBA, decoded and encoded with zlib: what masks need (their
/// alpha), not a general image library. Decodes 8-bit greyscale, grey + alpha, RGB (with a
/// `tRNS` colour key), palette (with `tRNS`) and RGBA, not interlaced.
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
        var compressed: [UInt8] = []
        while offset + 8 <= bytes.count {
            let length = Int(Self.be32(bytes, offset))
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            guard offset + 12 + length <= bytes.count else { throw Failure("truncated \(type) chunk") }
            let data = Array(bytes[(offset + 8)..<(offset + 8 + length)])
            switch type {
            case "IHDR": header = data
            case "PLTE": palette = data
            case "tRNS": transparency = data
            case "IDAT": compressed += data
            default: break
            }
            offset += 12 + length
            if type == "IEND" { break }
        }
        guard header.count == 13 else { throw Failure("no IHDR chunk") }
        let width = Int(Self.be32(header, 0))
        let height = Int(Self.be32(header, 4))
        let depth = header[8]
        let colour = header[9]
        guard width > 0, height > 0, width <= 16384, height <= 16384 else { throw Failure("unsupported size \(width)×\(height)") }
        guard depth == 8 else { throw Failure("\(depth)-bit PNGs are not supported (8-bit only)") }
        guard header[12] == 0 else { throw Failure("interlaced PNGs are not supported") }
        let channels: Int
        switch colour {
        case 0: channels = 1
        case 2: channels = 3
        case 3: channels = 1
        case 4: channels = 2
        case 6: channels = 4
        default: throw Failure("unknown colour type \(colour)")
        }
        let stride = width * channels
        let raw = try Self.inflate(compressed, expected: (stride + 1) * height)
        guard raw.count >= (stride + 1) * height else { throw Failure("image data too short") }
        let pixels = Self.unfilter(raw, stride: stride, height: height, bytesPerPixel: channels)
        var rgba = [UInt8](repeating: 255, count: width * height * 4)
        let count = width * height
        // The common truecolour cases in tight loops; the others pixel by pixel.
        if colour == 6 {
            rgba = pixels
        } else if colour == 2 && transparency.isEmpty {
            pixels.withUnsafeBufferPointer { source in
                rgba.withUnsafeMutableBufferPointer { target in
                    var s = source.baseAddress!
                    var t = target.baseAddress!
                    for _ in 0..<count {
                        t[0] = s[0]
                        t[1] = s[1]
                        t[2] = s[2]
                        s += 3
                        t += 4
                    }
                }
            }
        } else {
            for index in 0..<count {
                let p = index * channels
                let o = index * 4
                switch colour {
                case 0:
                    let grey = pixels[p]
                    rgba[o] = grey
                    rgba[o + 1] = grey
                    rgba[o + 2] = grey
                    if transparency.count >= 2, UInt16(grey) == UInt16(transparency[0]) << 8 | UInt16(transparency[1]) { rgba[o + 3] = 0 }
                case 2:
                    rgba[o] = pixels[p]
                    rgba[o + 1] = pixels[p + 1]
                    rgba[o + 2] = pixels[p + 2]
                    if transparency.count >= 6, pixels[p] == transparency[1], pixels[p + 1] == transparency[3], pixels[p + 2] == transparency[5] {
                        rgba[o + 3] = 0
                    }
                case 3:
                    let entry = Int(pixels[p])
                    guard entry * 3 + 2 < palette.count else { throw Failure("palette index \(entry) out of range") }
                    rgba[o] = palette[entry * 3]
                    rgba[o + 1] = palette[entry * 3 + 1]
                    rgba[o + 2] = palette[entry * 3 + 2]
                    if entry < transparency.count { rgba[o + 3] = transparency[entry] }
                default:  // 4: grey and alpha
                    rgba[o] = pixels[p]
                    rgba[o + 1] = pixels[p]
                    rgba[o + 2] = pixels[p]
                    rgba[o + 3] = pixels[p + 1]
                }
            }
        }
        self.init(width: width, height: height, rgba: rgba, hadAlpha: colour == 4 || colour == 6 || !transparency.isEmpty)
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

    static func inflate(_ data: [UInt8], expected: Int) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        guard comfyq_inflate_init(&stream) == Z_OK else { throw Failure("cannot start zlib") }
        defer { inflateEnd(&stream) }
        var out = [UInt8](repeating: 0, count: max(expected, 1))
        var input = data
        let status: Int32 = input.withUnsafeMutableBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                stream.next_in = source.baseAddress
                stream.avail_in = UInt32(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = UInt32(target.count)
                return CZlib.inflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END || (status == Z_BUF_ERROR && stream.avail_out == 0) || status == Z_OK else {
            throw Failure("corrupt image data (zlib \(status))")
        }
        return Array(out.prefix(Int(stream.total_out)))
    }

    // MARK: Encoding

    /// The image as an RGBA PNG (filter none, zlib at `level`: 6, or 1 where speed matters more),
    /// with `text` in `tEXt` chunks (keyword, NUL, text), as ComfyUI stores the prompt.
    public func encoded(level: Int32 = 6, text: [String: String] = [:]) -> [UInt8] {
        var raw = [UInt8]()
        raw.reserveCapacity((width * 4 + 1) * height)
        for row in 0..<height {
            raw.append(0)
            raw += rgba[(row * width * 4)..<((row + 1) * width * 4)]
        }
        var compressedLength = compressBound(UInt(raw.count))
        var compressed = [UInt8](repeating: 0, count: Int(compressedLength))
        _ = compressed.withUnsafeMutableBufferPointer { target in
            raw.withUnsafeBufferPointer { source in compress2(target.baseAddress, &compressedLength, source.baseAddress, UInt(source.count), level) }
        }
        compressed.removeSubrange(Int(compressedLength)...)
        var out = Self.signature
        var header = Self.bytes32(UInt32(width)) + Self.bytes32(UInt32(height))
        header += [8, 6, 0, 0, 0]
        Self.chunk("IHDR", header, into: &out)
        for (keyword, value) in text.sorted(by: { $0.key < $1.key }) { Self.chunk("tEXt", Array(keyword.utf8) + [0] + Array(value.utf8), into: &out) }
        Self.chunk("IDAT", compressed, into: &out)
        Self.chunk("IEND", [], into: &out)
        return out
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

/// Masks for `LoadImage`: ComfyUI takes an image's mask from its alpha channel (transparent =
/// masked, as its mask editor paints), and `/upload/mask` copies a mask image's alpha into the
/// uploaded image. A mask file is used as it is when it has alpha; a greyscale or colour mask
/// without alpha (white = where to paint) becomes alpha = 255 − brightness.
public enum MaskImage {
    public static func alphaMask(_ bytes: [UInt8]) throws(PNGImage.Failure) -> [UInt8] {
        let image = try PNGImage(decoding: bytes)
        if image.hadAlpha { return bytes }
        var rgba = [UInt8](repeating: 0, count: image.rgba.count)
        for pixel in 0..<(image.width * image.height) {
            let o = pixel * 4
            let brightness = (Int(image.rgba[o]) * 299 + Int(image.rgba[o + 1]) * 587 + Int(image.rgba[o + 2]) * 114) / 1000
            rgba[o + 3] = UInt8(255 - brightness)
        }
        return PNGImage(width: image.width, height: image.height, rgba: rgba).encoded()
    }
}

/// Thumbnails of outputs: decoded, scaled down by area averaging (every source pixel counts,
/// so noise and fine detail average out instead of aliasing), encoded as PNG.
public enum Thumbnail {
    /// At most `longSide` pixels on the long side (an image already that small is kept as it is).
    public static func make(_ bytes: [UInt8], longSide: Int = 256) throws(PNGImage.Failure) -> [UInt8] {
        let image = try PNGImage(decoding: bytes)
        return scaled(image, longSide: longSide).encoded(level: 1)
    }

    public static func scaled(_ image: PNGImage, longSide: Int) -> PNGImage {
        let scale = Double(max(image.width, image.height)) / Double(longSide)
        guard scale > 1 else { return image }
        let width = max(1, Int((Double(image.width) / scale).rounded()))
        let height = max(1, Int((Double(image.height) / scale).rounded()))
        var out = [UInt8](repeating: 0, count: width * height * 4)
        image.rgba.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                for y in 0..<height {
                    let top = y * image.height / height
                    let bottom = max(top + 1, (y + 1) * image.height / height)
                    for x in 0..<width {
                        let left = x * image.width / width
                        let right = max(left + 1, (x + 1) * image.width / width)
                        var (r, g, b, a) = (0, 0, 0, 0)
                        for sy in top..<bottom {
                            var pixel = source.baseAddress! + (sy * image.width + left) * 4
                            for _ in left..<right {
                                r &+= Int(pixel[0])
                                g &+= Int(pixel[1])
                                b &+= Int(pixel[2])
                                a &+= Int(pixel[3])
                                pixel += 4
                            }
                        }
                        let count = (bottom - top) * (right - left)
                        let index = (y * width + x) * 4
                        target[index] = UInt8(r / count)
                        target[index + 1] = UInt8(g / count)
                        target[index + 2] = UInt8(b / count)
                        target[index + 3] = UInt8(a / count)
                    }
                }
            }
        }
        return PNGImage(width: width, height: height, rgba: out, hadAlpha: image.hadAlpha)
    }

    /// Where an output's thumbnail goes: `.thumbs/NAME.png` beside it.
    public static func path(for output: String) -> String {
        let url = URL(fileURLWithPath: output)
        return url.deletingLastPathComponent().appendingPathComponent(".thumbs").appendingPathComponent(url.deletingPathExtension().lastPathComponent + ".png").path
    }
}
