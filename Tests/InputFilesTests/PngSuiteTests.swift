import Foundation
import InputFiles
import Testing

/// The PNG test suite (`Tests/Fixtures/pngsuite`, Willem van Schaik's PngSuite with its licence):
/// every valid file decodes, interlaced files give the same pixels as their plain twins, and the
/// damaged ones (`x*.png`) are refused with a reason.
struct PngSuiteTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/pngsuite")

    static let files: [String] = {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".png") && $0 != "PngSuite.png" }.sorted()
    }()
    static let valid = files.filter { !$0.hasPrefix("x") }
    static let corrupt = files.filter { $0.hasPrefix("x") }

    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: folder.appendingPathComponent(name))) }

    @Test func theSuiteIsThere() {
        #expect(Self.valid.count == 161 && Self.corrupt.count == 14, "\(Self.valid.count) valid, \(Self.corrupt.count) corrupt")
    }

    @Test(arguments: valid) func everyValidFileDecodes(_ name: String) throws {
        let image = try PNGImage(decoding: Self.bytes(name))
        let size = try #require(PNGImage.size(of: Self.bytes(name)))
        #expect(image.width == size.width && image.height == size.height && image.rgba.count == size.width * size.height * 4)
    }

    /// `basi…`/`s..i…` are the `basn…`/`s..n…` pictures stored interlaced (Adam7), and `oi…` the
    /// `basn…` ones with their data split over several IDAT chunks: the same pixels.
    @Test(arguments: valid.filter { $0.hasPrefix("basi") || ($0.hasPrefix("s") && $0.dropFirst(3).hasPrefix("i")) || $0.hasPrefix("oi") })
    func interlacedAndSplitFilesEqualTheirPlainTwins(_ name: String) throws {
        let twin: String
        if name.hasPrefix("oi") {
            twin = "basn" + name.dropFirst(4)
        } else {
            var characters = Array(name)
            characters[3] = "n"
            twin = String(characters)
        }
        let image = try PNGImage(decoding: Self.bytes(name))
        let plain = try PNGImage(decoding: Self.bytes(twin))
        #expect(image == plain, "\(name) ≠ \(twin)")
    }

    @Test(arguments: [
        ("xc1n0g08.png", "unknown colour type 1"),
        ("xc9n2c08.png", "unknown colour type 9"),
        ("xcrn0g04.png", "not a PNG file"),
        ("xcsn0g01.png", "corrupt IDAT chunk (its CRC is wrong): the file is damaged"),
        ("xd0n2c08.png", "bit depth 0 is not valid for colour type 2"),
        ("xd3n2c08.png", "bit depth 3 is not valid for colour type 2"),
        ("xd9n2c08.png", "bit depth 99 is not valid for colour type 2"),
        ("xdtn0g01.png", "no image data (IDAT chunk)"),
        ("xhdn0g08.png", "corrupt IHDR chunk (its CRC is wrong): the file is damaged"),
        ("xlfn0g04.png", "not a PNG file"),
        ("xs1n0g01.png", "not a PNG file"),
        ("xs2n0g01.png", "not a PNG file"),
        ("xs4n0g01.png", "not a PNG file"),
        ("xs7n0g01.png", "not a PNG file"),
    ])
    func damagedFilesSayWhy(_ name: String, _ reason: String) throws {
        let bytes = try Self.bytes(name)
        #expect { try PNGImage(decoding: bytes) } throws: { ($0 as? PNGImage.Failure)?.description == reason }
    }

    /// A byte changed anywhere in a chunk of a good file is caught by that chunk's CRC.
    @Test func everyFlippedByteOfAChunkIsCaught() throws {
        let good = try Self.bytes("basn2c08.png")
        var caught = 0
        for position in 8..<good.count {
            var bad = good
            bad[position] ^= 0x40
            do {
                _ = try PNGImage(decoding: bad)
            } catch {
                caught += 1
            }
        }
        #expect(caught == good.count - 8)
    }

    /// An interlaced mask without alpha (as an image editor saves one) becomes an alpha mask.
    @Test func anInterlacedMaskIsUsable() throws {
        let mask = try PNGImage(decoding: MaskImage.alphaMask(Self.bytes("basi0g08.png")))
        let grey = try PNGImage(decoding: Self.bytes("basn0g08.png"))
        #expect(mask.width == 32 && mask.hadAlpha)
        #expect((0..<(32 * 32)).allSatisfy { mask.rgba[$0 * 4 + 3] == 255 - grey.rgba[$0 * 4] })
    }
}
