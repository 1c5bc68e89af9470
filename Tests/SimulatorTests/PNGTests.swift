import Foundation
import TestSupport
import InputFiles
import Simulator
import Testing

@Suite struct PNGTests {
    @Test func writesAValidDeterministicPNG() async throws {
        let png = PNG.noise(width: 96, height: 64, seed: 7)
        #expect(png.prefix(8) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(png == PNG.noise(width: 96, height: 64, seed: 7))
        #expect(png != PNG.noise(width: 96, height: 64, seed: 8))
        // An independent decoder (Python's zlib) agrees on chunks, CRCs and pixel data.
        let path = TestFolder.root.appendingPathComponent("comfyq-\(UUID()).png").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(png))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let check = """
            import struct, sys, zlib
            data = open(sys.argv[1], 'rb').read()
            assert data[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
            pos, idat, size = 8, b'', None
            while pos < len(data):
                length, kind = struct.unpack('>I4s', data[pos:pos + 8])
                body = data[pos + 8:pos + 8 + length]
                assert struct.unpack('>I', data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(kind + body)
                if kind == b'IHDR': size = struct.unpack('>II', body[:8])
                if kind == b'IDAT': idat += body
                pos += 12 + length
            raw = zlib.decompress(idat)
            assert len(raw) == size[1] * (size[0] * 3 + 1), len(raw)
            print(size[0], size[1])
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", check, path]
        let pipe = Pipe()
        process.standardOutput = pipe
        let status = try await run(process)
        #expect(status == 0)
        #expect(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) == "96 64\n")
    }

    private func run(_ process: Process) async throws -> Int32 {
        try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
    }
}

/// What the simulator draws: its parameters, readable back from the pixels.
@Suite struct SimulatedImageTests {
    @Test(arguments: [(512, 512), (96, 64), (1024, 576), (200, 800)])
    func theLabelReadsBackAtEverySize(width: Int, height: Int) throws {
        let lines = ["seed 42", "steps 20 cfg 7.5", "euler normal", "a lighthouse"]
        let image = try PNGImage(decoding: SimulatedImage.render(width: width, height: height, seed: 42, lines: lines).encoded(level: 1))
        let fitting = BitmapFont.characters(fitting: width - 2 * SimulatedImage.layout(width: width, height: height).x, scale: SimulatedImage.layout(width: width, height: height).scale)
        let expected = lines.prefix { _ in true }.map { String($0.prefix(fitting)) }
        let read = SimulatedImage.read(image)
        #expect(Array(expected.prefix(read.count)) == read)
        #expect(read.count == min(lines.count, (height - 3 * SimulatedImage.layout(width: width, height: height).scale) / (BitmapFont.lineHeight * SimulatedImage.layout(width: width, height: height).scale)))
    }

    @Test func differentParametersMakeDifferentColours() {
        let a = SimulatedImage.render(width: 64, height: 64, seed: 1, lines: ["cfg 5"])
        let b = SimulatedImage.render(width: 64, height: 64, seed: 1, lines: ["cfg 7"])
        #expect(a.colour(x: 60, y: 60) != b.colour(x: 60, y: 60))
        let deterministic = a == SimulatedImage.render(width: 64, height: 64, seed: 1, lines: ["cfg 5"])
        #expect(deterministic)
    }
}
