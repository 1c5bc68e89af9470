import Foundation
import Synchronization
import WebSocket

/// An HTTP/1.1 server on our own sockets: an accept thread, a thread per connection reading
/// keep-alive requests (size limits from `HTTPRequestParser`, an idle timeout), and a handler
/// that answers each one or takes the connection over (a WebSocket, an event stream). The
/// simulator and `comfyq serve` both run on it.
public final class HTTPServer: Sendable {
    /// What the handler did with a request.
    public enum Reply: Sendable {
        case response(HTTPResponse)
        /// The handler used the connection itself (upgraded it, streamed on it) and is done with it.
        case tookOver
    }

    /// Answers a request; `remainder` gives the bytes received after it (an upgraded protocol's first frames).
    public typealias Handler = @Sendable (_ request: HTTPRequest, _ connection: ClientConnection, _ remainder: () -> [UInt8]) -> Reply

    private let listener: Listener
    private let name: String
    private let latency: Double
    private let maximumBody: Int
    /// A keep-alive connection that sends nothing for this long is closed (nil: never).
    private let idleTimeout: Duration?
    private let state = Mutex<(connections: [ClientConnection], stopped: Bool)>(([], false))

    public var port: Int { listener.port }

    /// Binds `host:port` (0: a free port); nothing is accepted before `start`.
    public init(host: String, port: Int, name: String, latency: Double = 0, maximumBody: Int = 256 << 20, idleTimeout: Duration? = nil) throws(SocketError) {
        listener = try Listener(host: host, port: port)
        self.name = name
        self.latency = latency
        self.maximumBody = maximumBody
        self.idleTimeout = idleTimeout
    }

    /// Starts accepting, each request going to `handler` on its connection's thread.
    public func start(_ handler: @escaping Handler) {
        let thread = Thread { [self] in acceptLoop(handler) }
        thread.name = "\(name) accept"
        thread.start()
    }

    /// Stops accepting and drops every connection (open WebSockets and streams too).
    public func stop() {
        let connections = state.withLock { state -> [ClientConnection] in
            state.stopped = true
            return state.connections
        }
        listener.shutdown()
        for connection in connections { connection.drop() }
    }

    /// Connections open now.
    public var connectionCount: Int { state.withLock { $0.connections.count } }

    private func acceptLoop(_ handler: @escaping Handler) {
        defer { listener.close() }
        while let socket = listener.accept() {
            let connection = ClientConnection(socket: socket, latency: latency)
            let stopped = state.withLock { state -> Bool in
                if !state.stopped { state.connections.append(connection) }
                return state.stopped
            }
            if stopped {
                connection.drop()
                return
            }
            let thread = Thread { [self] in serve(connection, handler) }
            thread.name = "\(name) connection"
            thread.start()
        }
    }

    /// HTTP requests until the connection closes, is idle too long, or is taken over.
    private func serve(_ connection: ClientConnection, _ handler: Handler) {
        defer {
            state.withLock { $0.connections.removeAll { $0 === connection } }
            connection.close()
        }
        var parser = HTTPRequestParser(maximumBody: maximumBody)
        while true {
            let request: HTTPRequest?
            do {
                request = try parser.nextRequest()
            } catch {
                connection.send(HTTPResponse(status: 400, contentType: "text/plain", body: Array("bad request: \(error)".utf8)).serialized(keepAlive: false))
                return
            }
            if let request {
                switch handler(request, connection, { parser.takeRemainder() }) {
                case .tookOver:
                    return
                case .response(let response):
                    connection.send(response.serialized(keepAlive: request.keepAlive))
                    if !request.keepAlive { return }
                }
                continue
            }
            let chunk: [UInt8]
            do {
                chunk = try connection.socket.read(maximum: 64 * 1024, timeout: idleTimeout)
            } catch {
                return  // closed, cut or idle too long
            }
            if chunk.isEmpty { return }
            parser.append(chunk)
        }
    }
}
