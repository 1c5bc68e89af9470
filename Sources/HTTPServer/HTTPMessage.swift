/// An HTTP/1.1 request as our servers (the simulator, `comfyq serve`) see it.
public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    /// The path without the query, percent-decoded; `/api/` prefixes are kept (the router strips them).
    public var path: String
    public var query: [String: String]
    /// Header names lowercased.
    public var headers: [String: String]
    public var body: [UInt8]

    public var wantsWebSocket: Bool {
        headers["upgrade"]?.lowercased() == "websocket"
    }

    /// Whether the connection stays open after the answer (HTTP/1.1 default).
    public var keepAlive: Bool { headers["connection"]?.lowercased() != "close" }
}

/// Why a request could not be read; the server answers 400 and closes.
public enum HTTPParseError: Error, Sendable, Equatable {
    case malformedRequestLine
    case malformedHeader
    case headTooLarge
    case bodyTooLarge
    case unsupportedTransferEncoding
}

/// An incremental HTTP/1.1 request parser: feed bytes, take out whole requests (keep-alive
/// connections carry several). Bodies need a Content-Length (what ComfyUI's clients send).
public struct HTTPRequestParser: Sendable {
    public static let maximumHead = 64 * 1024
    public let maximumBody: Int
    private var buffer: [UInt8] = []

    public init(maximumBody: Int = 256 << 20) { self.maximumBody = maximumBody }

    public mutating func append(_ bytes: some Sequence<UInt8>) { buffer.append(contentsOf: bytes) }

    /// Bytes received after the last whole request (a WebSocket's first frames, for instance).
    public mutating func takeRemainder() -> [UInt8] {
        defer { buffer.removeAll() }
        return buffer
    }

    public mutating func nextRequest() throws(HTTPParseError) -> HTTPRequest? {
        guard let end = headEnd() else {
            if buffer.count > Self.maximumHead { throw .headTooLarge }
            return nil
        }
        let head = String(decoding: buffer[..<end], as: UTF8.self)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1.") else { throw .malformedRequestLine }
        var headers: [String: String] = [:]
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw .malformedHeader }
            headers[line[..<colon].lowercased()] = String(line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" })
        }
        if let encoding = headers["transfer-encoding"], encoding.lowercased() != "identity" {
            throw .unsupportedTransferEncoding
        }
        let length = Int(headers["content-length"] ?? "0") ?? -1
        guard length >= 0 else { throw .malformedHeader }
        guard length <= maximumBody else { throw .bodyTooLarge }
        let bodyStart = end + 4
        guard buffer.count >= bodyStart + length else { return nil }
        let body = Array(buffer[bodyStart..<(bodyStart + length)])
        buffer.removeFirst(bodyStart + length)

        let target = String(requestLine[1])
        let pathPart = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var query: [String: String] = [:]
        if pathPart.count > 1 {
            for pair in pathPart[1].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                query[Self.percentDecode(parts[0])] = parts.count > 1 ? Self.percentDecode(parts[1]) : ""
            }
        }
        return HTTPRequest(
            method: String(requestLine[0]), path: Self.percentDecode(pathPart[0]), query: query, headers: headers, body: body)
    }

    private func headEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for index in 0...(buffer.count - 4)
        where buffer[index] == 13 && buffer[index + 1] == 10 && buffer[index + 2] == 13 && buffer[index + 3] == 10 {
            return index
        }
        return nil
    }

    public static func percentDecode(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// An HTTP response to write.
public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, contentType: String = "application/json; charset=utf-8", body: [UInt8] = [], headers: [(String, String)] = []) {
        self.status = status
        self.headers = [("Content-Type", contentType)] + headers
        self.body = body
    }

    public static func == (lhs: HTTPResponse, rhs: HTTPResponse) -> Bool {
        lhs.status == rhs.status && lhs.body == rhs.body && lhs.headers.map { "\($0.0):\($0.1)" } == rhs.headers.map { "\($0.0):\($0.1)" }
    }

    public func serialized(keepAlive: Bool) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(Self.reason(status))\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(body.count)\r\n"
        head += keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n"
        head += "\r\n"
        return Array(head.utf8) + body
    }

    public static func reason(_ status: Int) -> String {
        switch status {
        case 101: "Switching Protocols"
        case 200: "OK"
        case 303: "See Other"
        case 400: "Bad Request"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 500: "Internal Server Error"
        default: "Status"
        }
    }
}
