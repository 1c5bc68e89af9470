import Foundation
import TestSupport
import Simulator
import Testing

@Suite struct HTTPRequestParserTests {
    @Test(arguments: [1, 3, 17, 1000])
    func parsesKeepAliveRequestsInAnyChunks(chunk: Int) throws {
        let text = "POST /api/prompt?x=a%20b&y=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET /queue HTTP/1.1\r\nConnection: close\r\n\r\n"
        let bytes = Array(text.utf8)
        var parser = HTTPRequestParser()
        var requests: [HTTPRequest] = []
        for start in stride(from: 0, to: bytes.count, by: chunk) {
            parser.append(bytes[start..<min(bytes.count, start + chunk)])
            while let request = try parser.nextRequest() { requests.append(request) }
        }
        #expect(requests.count == 2)
        #expect(requests[0].method == "POST")
        #expect(requests[0].path == "/api/prompt")
        #expect(requests[0].query == ["x": "a b", "y": "1"])
        #expect(requests[0].body == Array("hello".utf8))
        #expect(requests[0].keepAlive)
        #expect(requests[1].path == "/queue")
        #expect(!requests[1].keepAlive)
    }

    @Test func rejectsWhatItCannotRead() {
        var parser = HTTPRequestParser()
        parser.append(Array("NOT A REQUEST\r\n\r\n".utf8))
        #expect(throws: HTTPParseError.malformedRequestLine) { try parser.nextRequest() }
        var chunked = HTTPRequestParser()
        chunked.append(Array("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
        #expect(throws: HTTPParseError.unsupportedTransferEncoding) { try chunked.nextRequest() }
        var huge = HTTPRequestParser(maximumBody: 10)
        huge.append(Array("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n".utf8))
        #expect(throws: HTTPParseError.bodyTooLarge) { try huge.nextRequest() }
    }
}

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
