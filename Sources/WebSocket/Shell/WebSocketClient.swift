import Foundation
import Synchronization

/// Why a WebSocket connection failed or ended abnormally.
public enum WebSocketError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidURL(String)
    case socket(SocketError)
    case handshake(HandshakeError)
    case protocolViolation(WebSocketProtocolError)
    /// The peer went away without a close handshake (close code 1006).
    case connectionLost(String)
    case notOpen

    public var description: String {
        switch self {
        case .invalidURL(let url): "invalid WebSocket URL '\(url)'"
        case .socket(let error): "\(error)"
        case .handshake(let error): "\(error)"
        case .protocolViolation(let error): "protocol error: \(error)"
        case .connectionLost(let detail): "connection lost: \(detail)"
        case .notOpen: "the WebSocket is not open"
        }
    }
}

/// Where to connect: `ws://host:port/path?query` (http and https URLs are accepted and mapped).
public struct WebSocketURL: Sendable, Equatable, CustomStringConvertible {
    public var secure: Bool
    public var host: String
    public var port: Int
    /// Path and query, e.g. `/ws?clientId=abc`.
    public var target: String

    public init(_ string: String) throws(WebSocketError) {
        guard let components = URLComponents(string: string), let scheme = components.scheme?.lowercased(),
            var host = components.host, !host.isEmpty
        else { throw .invalidURL(string) }
        switch scheme {
        case "ws", "http": secure = false
        case "wss", "https": secure = true
        default: throw .invalidURL(string)
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host
        port = components.port ?? (secure ? 443 : 80)
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        target = path + (components.percentEncodedQuery.map { "?\($0)" } ?? "")
    }

    /// The `Host` header: IPv6 literals in brackets, the port unless it is the scheme's default.
    public var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (secure ? 443 : 80) ? name : "\(name):\(port)"
    }

    public var description: String { "\(secure ? "wss" : "ws")://\(hostHeader)\(target)" }
}

/// Connection settings.
public struct WebSocketOptions: Sendable {
    /// Extra request headers, e.g. `Authorization` or `Cookie` for servers behind a proxy.
    public var headers: [(String, String)] = []
    public var connectTimeout: Duration = .seconds(10)
    /// How long the server may take to answer the upgrade request.
    public var handshakeTimeout: Duration = .seconds(10)
    /// Longest silence tolerated once open (nil: none; ComfyUI may be quiet for minutes).
    public var readTimeout: Duration?
    /// How long to wait for the peer's close frame after sending ours.
    public var closeTimeout: Duration = .seconds(5)
    /// How long a frame may wait for the peer to take any of it (a peer that stopped reading):
    /// then `send` fails, and the connection with it.
    public var sendTimeout: Duration = .seconds(10)
    public var maximumMessageSize = 64 << 20
    /// Certificate checks for `wss://`.
    public var tls = TLSOptions()

    public init() {}
}

/// A WebSocket client connection (RFC 6455) on its own reader thread.
///
/// Received messages arrive on `messages`; `send` may be called from any task. The reader thread
/// blocks in the kernel, never in the cooperative pool. The stream ends normally after a close
/// handshake (see `closeCode`), and with a `WebSocketError` when the connection breaks.
///
/// Two locks: the machine's state is only decided under `shared`, never while a frame is being
/// written; frames are written one at a time under `writing` (taken first, so what the machine
/// decides goes out in that order), each within `sendTimeout`.
public final class WebSocketClient: Sendable {
    public let url: WebSocketURL
    public let messages: AsyncThrowingStream<WebSocketMessage, any Error>

    private struct Shared: ~Copyable {
        var machine: WebSocketStateMachine
        var closeCode: UInt16?
        var closeReason = ""
    }

    private let stream: any ByteStream
    private let shared: Mutex<Shared>
    private let writing = Mutex(())
    private let continuation: AsyncThrowingStream<WebSocketMessage, any Error>.Continuation
    private let options: WebSocketOptions

    private init(url: WebSocketURL, stream: any ByteStream, options: WebSocketOptions) {
        self.url = url
        self.stream = stream
        self.options = options
        shared = Mutex(Shared(machine: WebSocketStateMachine(maximumMessageSize: options.maximumMessageSize)))
        (messages, continuation) = AsyncThrowingStream.makeStream(of: WebSocketMessage.self)
    }

    /// Connects and completes the opening handshake; the connection then reads on its own thread.
    public static func connect(to url: WebSocketURL, options: WebSocketOptions = WebSocketOptions()) async throws -> WebSocketClient {
        try await withCheckedThrowingContinuation { (ready: CheckedContinuation<WebSocketClient, any Error>) in
            let thread = Thread {
                let client: WebSocketClient
                let leftover: [UInt8]
                do {
                    let stream: any ByteStream =
                        url.secure
                        ? try TLSStream.connect(host: url.host, port: url.port, timeout: options.connectTimeout, options: options.tls)
                        : try TCPSocket.connect(host: url.host, port: url.port, timeout: options.connectTimeout)
                    stream.setSendTimeout(options.sendTimeout)
                    client = WebSocketClient(url: url, stream: stream, options: options)
                    do {
                        leftover = try client.handshake()
                    } catch {
                        stream.close()
                        throw error
                    }
                } catch let error as SocketError {
                    ready.resume(throwing: WebSocketError.socket(error))
                    return
                } catch {
                    ready.resume(throwing: error)
                    return
                }
                ready.resume(returning: client)
                client.readLoop(initial: leftover)
            }
            thread.name = "comfyq-ws \(url.hostHeader)"
            thread.start()
        }
    }

    /// The peer's close code once the stream has ended with a close handshake.
    public var closeCode: UInt16? { shared.withLock { $0.closeCode } }
    public var closeReason: String { shared.withLock { $0.closeReason } }

    /// Sends a text or binary message (masked with a fresh random key).
    public func send(_ message: WebSocketMessage) throws(WebSocketError) {
        let frame: Frame
        switch message {
        case .text(let text): frame = Frame(opcode: .text, payload: Array(text.utf8))
        case .binary(let bytes): frame = Frame(opcode: .binary, payload: bytes)
        }
        try write(frame, requireOpen: true)
    }

    /// Sends a ping; the pong is handled internally.
    public func ping(_ payload: [UInt8] = []) throws(WebSocketError) {
        try write(Frame(opcode: .ping, payload: Array(payload.prefix(125))), requireOpen: true)
    }

    /// Starts the close handshake; the stream ends when the peer answers (or after `closeTimeout`).
    public func close(code: UInt16 = 1000, reason: String = "") {
        let result: Result<Void, WebSocketError>? = writing.withLock { _ in
            guard let frame = shared.withLock({ $0.machine.close(code: code, reason: reason) }) else { return nil }
            return Result { () throws(WebSocketError) in try writeFrame(frame) }
        }
        guard case .success? = result else {
            stream.shutdown()
            return
        }
        let stream = self.stream
        DispatchQueue.global().asyncAfter(deadline: .now() + Double(TCPSocket.milliseconds(options.closeTimeout)) / 1000) {
            stream.shutdown()  // the peer never answered: give up on it
        }
    }

    /// Drops the connection at once, without a close handshake.
    public func abort() { stream.shutdown() }

    // MARK: Internals

    private func write(_ frame: Frame, requireOpen: Bool) throws(WebSocketError) {
        let result = writing.withLock { _ -> Result<Void, WebSocketError> in
            guard !requireOpen || shared.withLock({ $0.machine.isOpen }) else { return .failure(.notOpen) }
            return Result { () throws(WebSocketError) in try writeFrame(frame) }
        }
        if case .failure(.socket(.timedOut)) = result { stream.shutdown() }  // a peer that stopped reading: the connection ends
        try result.get()
    }

    /// Writes one frame; the caller holds `writing` (not `shared`), so frames never interleave.
    private func writeFrame(_ frame: Frame) throws(WebSocketError) {
        var generator = SystemRandomNumberGenerator()
        let key = (0..<4).map { _ in UInt8.random(in: 0...255, using: &generator) }
        do {
            try stream.write(FrameEncoder.encode(frame, maskKey: key))
        } catch {
            throw .socket(error)
        }
    }

    /// Sends the upgrade request and reads the answer; returns bytes that followed it.
    private func handshake() throws -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        let key = Handshake.key(from: (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) })
        var headers = options.headers
        headers.append(("User-Agent", "comfyq"))
        try stream.write(Handshake.request(host: url.hostHeader, path: url.target, key: key, headers: headers))
        var received: [UInt8] = []
        let deadline = ContinuousClock.now + options.handshakeTimeout
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw WebSocketError.socket(.timedOut("waiting for the handshake answer")) }
            let chunk = try stream.read(maximum: 16 * 1024, timeout: remaining)
            guard !chunk.isEmpty else {
                throw WebSocketError.connectionLost("the server closed the connection during the handshake")
            }
            received += chunk
            let parsed: (response: Handshake.Response, used: Int)?
            do {
                parsed = try Handshake.parseResponse(received)
            } catch {
                throw WebSocketError.handshake(error)
            }
            guard let parsed else { continue }
            do {
                try Handshake.validate(parsed.response, key: key)
            } catch {
                throw WebSocketError.handshake(error)
            }
            return Array(received[parsed.used...])
        }
    }

    private func readLoop(initial: [UInt8]) {
        var parser = FrameParser(role: .client, maximumFrameSize: options.maximumMessageSize)
        parser.append(initial)
        defer { stream.close() }
        while true {
            do {
                while let frame = try parser.nextFrame() {
                    let actions = shared.withLock { $0.machine.received(frame) }
                    if perform(actions) { return }
                }
            } catch {
                // Answer with the close code for the violation, then end with the error.
                let actions = shared.withLock { $0.machine.fail(error) }
                for case .send(let frame) in actions { writing.withLock { _ in _ = try? writeFrame(frame) } }
                stream.shutdown()
                continuation.finish(throwing: WebSocketError.protocolViolation(error))
                return
            }
            let chunk: [UInt8]
            do {
                chunk = try stream.read(maximum: 64 * 1024, timeout: options.readTimeout)
            } catch {
                stream.shutdown()
                continuation.finish(throwing: WebSocketError.socket(error))
                return
            }
            if chunk.isEmpty {
                // Shut down before the stream ends, so whoever reconnects on that signal never
                // overlaps this socket (ComfyUI mishandles two sockets with one clientId).
                stream.shutdown()
                let closed = shared.withLock { $0.machine.isClosed }
                if closed {
                    continuation.finish()
                } else {
                    let detail =
                        parser.bufferedByteCount > 0
                        ? "the server went away in the middle of a frame" : "the server closed the connection"
                    continuation.finish(throwing: WebSocketError.connectionLost(detail))
                }
                return
            }
            parser.append(chunk)
        }
    }

    /// Carries out the machine's actions; true when the connection is finished.
    private func perform(_ actions: [WebSocketStateMachine.Action]) -> Bool {
        for action in actions {
            switch action {
            case .deliver(let message):
                continuation.yield(message)
            case .send(let frame):
                writing.withLock { _ in _ = try? writeFrame(frame) }
            case .closeConnection(let code, let reason):
                shared.withLock { state in
                    state.closeCode = code
                    state.closeReason = reason
                }
                stream.shutdown()
                continuation.finish()
                return true
            }
        }
        return false
    }
}
