/// A minimal PNG encoder: 8-bit RGB, zlib "stored" blocks (no compression library needed).
/// The images are noise, deterministic from a seed, the size of the latent that made them.
public enum PNG {
    public static func noise(width: Int, height: Int, seed: UInt64, text: [String: String] = [:]) -> [UInt8] {
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        var raw: [UInt8] = []
        raw.reserveCapacity((width * 3 + 1) * height)
        for _ in 0..<height {
            raw.append(0)  // filter: none
            var x = 0
            while x < width * 3 {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                for shift in stride(from: 0, to: 64, by: 8) where x < width * 3 {
                    raw.append(UInt8(truncatingIfNeeded: z >> UInt64(shift)))
                    x += 1
                }
            }
        }
        return encode(width: width, height: height, rgb: raw, text: text)
    }

    /// `rgb` is the filtered scanlines (a 0 filter byte, then width × 3 bytes, per row); `text`
    /// goes in `tEXt` chunks (keyword, NUL, Latin-1 text), as ComfyUI stores the prompt.
    public static func encode(width: Int, height: Int, rgb: [UInt8], text: [String: String] = [:]) -> [UInt8] {
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header: [UInt8] = []
        header += bigEndian(UInt32(width))
        header += bigEndian(UInt32(height))
        header += [8, 2, 0, 0, 0]  // 8-bit, truecolour, deflate, no filter method, no interlace
        chunk("IHDR", header, into: &out)
        for (keyword, value) in text.sorted(by: { $0.key < $1.key }) { chunk("tEXt", Array(keyword.utf8) + [0] + Array(value.utf8), into: &out) }
        chunk("IDAT", zlibStored(rgb), into: &out)
        chunk("IEND", [], into: &out)
        return out
    }

    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let length = min(65535, data.count - offset)
            let final: UInt8 = offset + length == data.count ? 1 : 0
            out.append(final)
            out += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
            out += data[offset..<(offset + length)]
            offset += length
        } while offset < data.count
        out += bigEndian(adler32(data))
        return out
    }

    static func chunk(_ type: String, _ data: [UInt8], into out: inout [UInt8]) {
        out += bigEndian(UInt32(data.count))
        let typed = Array(type.utf8) + data
        out += typed
        out += bigEndian(crc32(typed))
    }

    static let crcTable: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 != 0 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    public static func crc32(_ data: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = crcTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    static func adler32(_ data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1
        var b: UInt32 = 0
        for chunkStart in stride(from: 0, to: data.count, by: 5552) {
            for byte in data[chunkStart..<min(data.count, chunkStart + 5552)] {
                a += UInt32(byte)
                b += a
            }
            a %= 65521
            b %= 65521
        }
        return b << 16 | a
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
}
