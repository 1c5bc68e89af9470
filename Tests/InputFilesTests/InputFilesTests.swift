import ComfyCore
import Foundation
import InputFiles
import TestSupport
import Testing

/// PNG bytes written by hand: every colour type and filter the decoder reads.
enum HandPNG {
    static func make(width: Int, height: Int, colour: UInt8, depth: UInt8 = 8, interlace: UInt8 = 0, rows: [[UInt8]], chunks: [(String, [UInt8])] = []) -> [UInt8] {
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        chunk("IHDR", be32(UInt32(width)) + be32(UInt32(height)) + [depth, colour, 0, 0, interlace], into: &out)
        for (type, data) in chunks { chunk(type, data, into: &out) }
        chunk("IDAT", zlibStored(rows.flatMap { $0 }), into: &out)
        chunk("IEND", [], into: &out)
        return out
    }

    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01, 1, UInt8(data.count & 0xFF), UInt8(data.count >> 8), UInt8(~data.count & 0xFF), UInt8((~data.count >> 8) & 0xFF)]
        out += data
        var a: UInt32 = 1
        var b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        return out + be32(b << 16 | a)
    }

    static func chunk(_ type: String, _ data: [UInt8], into out: inout [UInt8]) {
        out += be32(UInt32(data.count))
        let typed = Array(type.utf8) + data
        out += typed
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in typed {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
        }
        out += be32(crc ^ 0xFFFF_FFFF)
    }

    static func be32(_ value: UInt32) -> [UInt8] { [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)] }
}

@Suite struct PNGImageTests {
    @Test func greyscaleAndGreyAlpha() throws {
        let grey = try PNGImage(decoding: HandPNG.make(width: 2, height: 1, colour: 0, rows: [[0, 10, 250]]))
        #expect(grey.rgba == [10, 10, 10, 255, 250, 250, 250, 255] && !grey.hadAlpha)
        let greyAlpha = try PNGImage(decoding: HandPNG.make(width: 1, height: 1, colour: 4, rows: [[0, 7, 99]]))
        #expect(greyAlpha.rgba == [7, 7, 7, 99] && greyAlpha.hadAlpha)
    }

    @Test func rgbWithAColourKeyAndAPalette() throws {
        let rgb = try PNGImage(
            decoding: HandPNG.make(width: 2, height: 1, colour: 2, rows: [[0, 1, 2, 3, 9, 9, 9]], chunks: [("tRNS", [0, 9, 0, 9, 0, 9])]))
        #expect(rgb.rgba == [1, 2, 3, 255, 9, 9, 9, 0] && rgb.hadAlpha)
        let palette = try PNGImage(
            decoding: HandPNG.make(width: 2, height: 1, colour: 3, rows: [[0, 1, 0]], chunks: [("PLTE", [10, 20, 30, 40, 50, 60]), ("tRNS", [128])]))
        #expect(palette.rgba == [40, 50, 60, 255, 10, 20, 30, 128])
    }

    /// Each filter on a 2×2 RGBA image whose second row is predicted from the first.
    @Test(arguments: [UInt8(1), 2, 3, 4])
    func filters(_ filter: UInt8) throws {
        let first: [UInt8] = [10, 20, 30, 40, 50, 60, 70, 80]
        let second: [UInt8] = [15, 25, 35, 45, 100, 110, 120, 130]
        // Encode the second row with the filter (the first row with none).
        var encoded: [UInt8] = []
        for x in 0..<8 {
            let left = x >= 4 ? Int(second[x - 4]) : 0
            let up = Int(first[x])
            let upLeft = x >= 4 ? Int(first[x - 4]) : 0
            let predicted: Int
            switch filter {
            case 1: predicted = left
            case 2: predicted = up
            case 3: predicted = (left + up) / 2
            default:
                let estimate = left + up - upLeft
                let (a, b, c) = (abs(estimate - left), abs(estimate - up), abs(estimate - upLeft))
                predicted = a <= b && a <= c ? left : (b <= c ? up : upLeft)
            }
            encoded.append(UInt8(truncatingIfNeeded: Int(second[x]) - predicted))
        }
        let image = try PNGImage(decoding: HandPNG.make(width: 2, height: 2, colour: 6, rows: [[0] + first, [filter] + encoded]))
        #expect(image.rgba == first + second)
    }

    /// Every other bit depth: 16-bit samples keep their high byte, grey below 8 bits is scaled
    /// to 0–255, palette indexes are packed, `tRNS` keys compare at full precision.
    @Test(arguments: [
        ("grey 1-bit", HandPNG.make(width: 9, height: 1, colour: 0, depth: 1, rows: [[0, 0b1010_0000, 0b1000_0000]]),
            [255, 0, 255, 0, 0, 0, 0, 0, 255].flatMap { [UInt8($0), UInt8($0), UInt8($0), 255] }),
        ("grey 2-bit", HandPNG.make(width: 4, height: 1, colour: 0, depth: 2, rows: [[0, 0b00_01_10_11]]),
            [0, 85, 170, 255].flatMap { [UInt8($0), UInt8($0), UInt8($0), 255] }),
        ("grey 4-bit", HandPNG.make(width: 3, height: 1, colour: 0, depth: 4, rows: [[0, 0x0F, 0x50]]),
            [0, 255, 85].flatMap { [UInt8($0), UInt8($0), UInt8($0), 255] }),
        ("palette 4-bit", HandPNG.make(width: 3, height: 1, colour: 3, depth: 4, rows: [[0, 0x10, 0x20]], chunks: [("PLTE", [1, 2, 3, 4, 5, 6, 7, 8, 9])]),
            [4, 5, 6, 255, 1, 2, 3, 255, 7, 8, 9, 255]),
        ("grey 16-bit with a key", HandPNG.make(width: 2, height: 1, colour: 0, depth: 16, rows: [[0, 0x12, 0x34, 0xAB, 0xCD]], chunks: [("tRNS", [0x12, 0x34])]),
            [0x12, 0x12, 0x12, 0, 0xAB, 0xAB, 0xAB, 255]),
        ("RGB 16-bit", HandPNG.make(width: 1, height: 1, colour: 2, depth: 16, rows: [[0, 0xFF, 0x00, 0x80, 0x01, 0x01, 0xFF]]),
            [0xFF, 0x80, 0x01, 255]),
        ("grey and alpha 16-bit", HandPNG.make(width: 1, height: 1, colour: 4, depth: 16, rows: [[0, 0x40, 0, 0x7F, 0xFF]]),
            [0x40, 0x40, 0x40, 0x7F]),
        ("RGBA 16-bit", HandPNG.make(width: 1, height: 1, colour: 6, depth: 16, rows: [[0, 1, 0, 2, 0, 3, 0, 4, 0]]),
            [1, 2, 3, 4]),
    ] as [(String, [UInt8], [UInt8])])
    func everyBitDepth(_ name: String, _ bytes: [UInt8], _ expected: [UInt8]) throws {
        let image = try PNGImage(decoding: bytes)
        #expect(image.rgba == expected, "\(name)")
    }

    @Test(arguments: [
        (HandPNG.make(width: 1, height: 1, colour: 2, depth: 4, rows: [[0, 0]]), "bit depth 4 is not valid for colour type 2"),
        (HandPNG.make(width: 1, height: 1, colour: 0, interlace: 2, rows: [[0, 0]]), "unknown interlace method 2"),
        (Array(HandPNG.make(width: 1, height: 1, colour: 0, rows: [[0, 0]]).prefix(33)) + [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82],
            "no image data (IDAT chunk)"),
        (Array("GIF89a".utf8), "not a PNG file"),
    ])
    func unsupportedImagesSaySo(_ bytes: [UInt8], _ message: String) {
        #expect { try PNGImage(decoding: bytes) } throws: { ($0 as? PNGImage.Failure)?.description == message }
    }

    @Test func encodedImagesReadBack() throws {
        let image = PNGImage(width: 3, height: 2, rgba: (0..<24).map { UInt8($0 * 10) })
        let decoded = try PNGImage(decoding: image.encoded())
        #expect(decoded.rgba == image.rgba && decoded.width == 3 && decoded.height == 2)
        #expect(PNGImage.size(of: image.encoded())! == (3, 2))
        // Without alpha it is written as RGB (colour type 2), and reads back opaque.
        let opaque = PNGImage(width: 2, height: 1, colour: PNGImage.Colour(9, 8, 7))
        let bytes = opaque.encoded()
        #expect(bytes[25] == 2)
        let read = try PNGImage(decoding: bytes)
        #expect(read.rgba == [9, 8, 7, 255, 9, 8, 7, 255] && !read.hadAlpha)
    }

    @Test func aMaskWithoutAlphaBecomesOneAndOneWithAlphaStaysAsItIs() throws {
        let blackAndWhite = HandPNG.make(width: 3, height: 1, colour: 0, rows: [[0, 255, 0, 128]])
        let mask = try PNGImage(decoding: MaskImage.alphaMask(blackAndWhite))
        #expect(mask.rgba.enumerated().filter { $0.offset % 4 == 3 }.map(\.element) == [0, 255, 127])
        let withAlpha = HandPNG.make(width: 1, height: 1, colour: 4, rows: [[0, 255, 3]])
        #expect(try MaskImage.alphaMask(withAlpha) == withAlpha)
    }
}

@Suite struct ThumbnailTests {
    @Test func areaAveragingHalvesAndKeepsTheLongSide() throws {
        // 4 × 2, left half black, right half white: 2 × 1 keeps one of each.
        var rgba: [UInt8] = []
        for _ in 0..<2 { for x in 0..<4 { rgba += x < 2 ? [0, 0, 0, 255] : [255, 255, 255, 255] } }
        let small = Thumbnail.scaled(PNGImage(width: 4, height: 2, rgba: rgba), longSide: 2)
        #expect(small.width == 2 && small.height == 1 && small.rgba == [0, 0, 0, 255, 255, 255, 255, 255])
        // Alternating pixels average to grey, not to one of them.
        let stripes = PNGImage(width: 4, height: 1, rgba: (0..<4).flatMap { $0 % 2 == 0 ? [0, 0, 0, 255] : [200, 200, 200, 255] as [UInt8] })
        #expect(Thumbnail.scaled(stripes, longSide: 2).rgba == [100, 100, 100, 255, 100, 100, 100, 255])
    }

    @Test func aLargeImageBecomes256OnItsLongSideAndASmallOneStays() throws {
        let large = PNGImage(width: 1024, height: 512, rgba: [UInt8](repeating: 90, count: 1024 * 512 * 4)).encoded()
        let thumbnail = try PNGImage(decoding: Thumbnail.make(large))
        #expect(thumbnail.width == 256 && thumbnail.height == 128 && thumbnail.rgba.allSatisfy { $0 == 90 })
        let small = PNGImage(width: 64, height: 48, rgba: [UInt8](repeating: 7, count: 64 * 48 * 4))
        #expect(try PNGImage(decoding: Thumbnail.make(small.encoded())).width == 64)
        #expect(Thumbnail.path(for: "/out/job/a_1.png") == "/out/job/.thumbs/a_1.png")
    }
}

@Suite struct LocalFilesTests {
    @Test func sha256() throws {
        #expect(FileHash.sha256(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let folder = try TestFolder.make("hash")
        let path = folder.appendingPathComponent("f.bin").path
        let bytes = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try FileHash.sha256(of: path) == FileHash.sha256(bytes), "read in pieces, hashed the same")
        #expect(throws: FileHash.Failure.self) { try FileHash.sha256(of: folder.appendingPathComponent("none").path) }
    }

    @Test func statusAndLinks() throws {
        let folder = try TestFolder.make("local")
        let file = folder.appendingPathComponent("a.png").path
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: file))
        let status = try #require(LocalFiles.status(file))
        #expect(status.kind == .file && status.size == 3 && status.readable && status.modified > 1_700_000_000)
        #expect(LocalFiles.status(folder.path)?.kind == .directory)
        #expect(LocalFiles.status(folder.appendingPathComponent("none").path) == nil)
        #expect(LocalFiles.files.readPrefix(file, 2) == [1, 2])

        // A link in the folder to a file outside it: a pattern refuses it, naming it.
        let photos = folder.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        try Data([0]).write(to: photos.appendingPathComponent("in.png"))
        try FileManager.default.createSymbolicLink(atPath: photos.appendingPathComponent("out.png").path, withDestinationPath: file)
        #expect(LocalFiles.files.realPath(photos.appendingPathComponent("out.png").path) == LocalFiles.files.realPath(file))
        guard case .failure(let problem) = Glob.expand("photos/*.png", base: folder.path, files: LocalFiles.files) else {
            Issue.record("a link leading outside was followed")
            return
        }
        #expect(problem.message.contains("out.png leads outside"))
        #expect(try Glob.expand("photos/in*.png", base: folder.path, files: LocalFiles.files).get() == [photos.appendingPathComponent("in.png").path])
    }
}
