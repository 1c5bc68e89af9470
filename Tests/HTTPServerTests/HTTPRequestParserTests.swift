import HTTPServer
import Testing

/// The request parser of our HTTP/1.1 server (the simulator's and `comfyq serve`'s).
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
