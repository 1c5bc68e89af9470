/// Why the opening handshake failed.
public enum HandshakeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server answered with something other than 101 (status, reason phrase).
    case unexpectedStatus(Int, String)
    case missingUpgrade
    /// `Sec-WebSocket-Accept` did not match the key we sent.
    case badAccept(expected: String, received: String?)
    case malformedResponse
    case responseTooLarge

    public var description: String {
        switch self {
        case .unexpectedStatus(let status, let reason):
            "the server answered HTTP \(status)\(reason.isEmpty ? "" : " \(reason)") instead of switching to WebSocket"
        case .missingUpgrade: "the server's answer has no 'Upgrade: websocket'"
        case .badAccept(let expected, let received):
            "wrong Sec-WebSocket-Accept: expected \(expected), got \(received ?? "none")"
        case .malformedResponse: "malformed HTTP answer to the WebSocket handshake"
        case .responseTooLarge: "the handshake answer is larger than 16 KiB"
        }
    }
}

/// The client side of the opening handshake (RFC 6455 §4).
public enum Handshake {
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// `Sec-WebSocket-Accept` for a key: base64(SHA-1(key + GUID)).
    public static func acceptValue(for key: String) -> String {
        Base64.encode(SHA1.hash(Array((key + guid).utf8)))
    }

    /// A key from 16 random bytes (the caller supplies the randomness).
    public static func key(from random: [UInt8]) -> String { Base64.encode(random) }

    /// The GET request that asks to switch protocols.
    public static func request(host: String, path: String, key: String, headers: [(String, String)] = []) -> [UInt8] {
        var text = "GET \(path) HTTP/1.1\r\n"
        text += "Host: \(host)\r\n"
        text += "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        text += "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        return Array(text.utf8)
    }

    /// A parsed HTTP response head.
    public struct Response: Sendable, Equatable {
        public var status: Int
        public var reason: String
        /// Header names lowercased.
        public var headers: [String: String]
    }

    /// Parses the response head if it is complete in `bytes`; returns it with the number of bytes
    /// it used (frames may follow in the same read). Nil means "need more bytes".
    public static func parseResponse(_ bytes: [UInt8]) throws(HandshakeError) -> (Response, Int)? {
        guard let end = headEnd(bytes) else {
            if bytes.count > 16 * 1024 { throw .responseTooLarge }
            return nil
        }
        let head = String(decoding: bytes[..<end], as: UTF8.self)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        guard !lines.isEmpty else { throw .malformedResponse }
        let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
            throw .malformedResponse
        }
        var headers: [String: String] = [:]
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw .malformedResponse }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
            headers[name] = String(value)
        }
        let reason = statusLine.count > 2 ? String(statusLine[2]) : ""
        return (Response(status: status, reason: reason, headers: headers), end + 4)
    }

    /// Checks a response head against the key we sent.
    public static func validate(_ response: Response, key: String) throws(HandshakeError) {
        guard response.status == 101 else { throw .unexpectedStatus(response.status, response.reason) }
        guard response.headers["upgrade"]?.lowercased() == "websocket" else { throw .missingUpgrade }
        let expected = acceptValue(for: key)
        guard response.headers["sec-websocket-accept"] == expected else {
            throw .badAccept(expected: expected, received: response.headers["sec-websocket-accept"])
        }
    }

    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4)
        where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index
        }
        return nil
    }
}
