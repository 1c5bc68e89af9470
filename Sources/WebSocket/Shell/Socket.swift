import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a socket operation failed, in words a user can act on.
public enum SocketError: Error, Sendable, Equatable, CustomStringConvertible {
    case resolutionFailed(host: String, reason: String)
    case connectionRefused(host: String, port: Int)
    case connectFailed(host: String, port: Int, reason: String)
    case timedOut(String)
    case io(String)
    /// TLS failed: certificate or host-name verification, or the handshake itself.
    case tls(String)
    case closed

    public var description: String {
        switch self {
        case .resolutionFailed(let host, let reason): "cannot resolve \(host): \(reason)"
        case .connectionRefused(let host, let port): "connection refused by \(host):\(port)"
        case .connectFailed(let host, let port, let reason): "cannot connect to \(host):\(port): \(reason)"
        case .timedOut(let what): "timed out \(what)"
        case .io(let reason): reason
        case .tls(let reason): "TLS: \(reason)"
        case .closed: "the connection is closed"
        }
    }
}

/// A byte stream the WebSocket shell runs over: plain TCP, or TLS on top of it.
public protocol ByteStream: AnyObject, Sendable {
    /// Writes all of `bytes` or throws.
    func write(_ bytes: [UInt8]) throws(SocketError)
    /// Reads what is available (blocking up to `timeout`, forever if nil); empty at end of stream.
    func read(maximum: Int, timeout: Duration?) throws(SocketError) -> [UInt8]
    /// Wakes a blocked reader and stops further traffic; safe from any thread, more than once.
    func shutdown()
    /// Releases the descriptor; call once, from the thread that reads.
    func close()
    /// From now on a write that the peer takes nothing of for this long fails (`timedOut`)
    /// instead of waiting for ever (a peer that stops reading).
    func setSendTimeout(_ timeout: Duration)
}

/// A connected TCP socket. Opened with `SOCK_CLOEXEC` so hook scripts' child processes do not
/// inherit it; writes use `MSG_NOSIGNAL` so a vanished peer is an error, not a SIGPIPE.
public final class TCPSocket: ByteStream, @unchecked Sendable {
    // Thread safety: `descriptor` is immutable after init; `shutdown` and `write` are safe on a
    // socket from any thread; `close` is only called by the reading thread, and a late
    // `shutdown` (a close timer, a dropped client) is a no-op (see `SocketDescriptor`).
    private let handle: SocketDescriptor
    /// The socket's file descriptor (TLS runs on top of it).
    var descriptor: Int32 { handle.value }

    private init(descriptor: Int32) { handle = SocketDescriptor(descriptor) }

    /// Wraps a connected descriptor (one a listening socket accepted).
    package init(accepted descriptor: Int32) { handle = SocketDescriptor(descriptor) }

    /// Resolves `host` (name, IPv4 or IPv6 literal) and connects to the first address that answers.
    public static func connect(host: String, port: Int, timeout: Duration) throws(SocketError) -> TCPSocket {
        try withAddresses(host: host, port: port, passive: false) { (addresses) throws(SocketError) -> TCPSocket in
            var lastError: SocketError = .connectFailed(host: host, port: port, reason: "no address")
            for address in addresses {
                do throws(SocketError) {
                    return try connect(address, host: host, port: port, timeout: timeout)
                } catch {
                    lastError = error
                }
            }
            throw lastError
        }
    }

    /// Resolves `host` and `port` for a stream socket (names, IPv4 and IPv6 literals) and hands
    /// the addresses to `body` while they are valid. `passive` is for binding a listener.
    package static func withAddresses<T>(
        host: String, port: Int, passive: Bool, _ body: ([addrinfo]) throws(SocketError) -> T
    ) throws(SocketError) -> T {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        if passive { hints.ai_flags = AI_PASSIVE }
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, list != nil else {
            throw .resolutionFailed(host: host, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(list) }
        var addresses: [addrinfo] = []
        var entry = list
        while let address = entry {
            addresses.append(address.pointee)
            entry = address.pointee.ai_next
        }
        return try body(addresses)
    }

    /// A loopback port nobody listens on now (bound on 127.0.0.1:0, read back, let go), for a
    /// server to be started on.
    public static func freeLoopbackPort() throws(SocketError) -> Int {
        #if canImport(Glibc)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw .io("cannot find a free port: \(errorText())") }
        defer { Glibc_close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(descriptor, pointer, length) == 0 && getsockname(descriptor, pointer, &length) == 0
            }
        }
        guard bound else { throw .io("cannot find a free port: \(errorText())") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func connect(_ address: addrinfo, host: String, port: Int, timeout: Duration) throws(SocketError) -> TCPSocket {
        #if canImport(Glibc)
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        let descriptor = socket(address.ai_family, type, 0)
        #else
        let descriptor = socket(address.ai_family, SOCK_STREAM, 0)
        if descriptor >= 0 {
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
            var yes: Int32 = 1
            setsockopt(descriptor, SOL_SOCKET, SO_NOSIGPIPE, &yes, socklen_t(MemoryLayout<Int32>.size))
        }
        #endif
        guard descriptor >= 0 else { throw .connectFailed(host: host, port: port, reason: errorText()) }
        var keep = false
        defer { if !keep { Glibc_close(descriptor) } }

        if Glibc_connect(descriptor, address.ai_addr, address.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else { throw connectError(errno, host: host, port: port) }
            var poller = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&poller, 1, milliseconds(timeout))
            guard ready > 0 else { throw .timedOut("connecting to \(host):\(port)") }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0 else { throw connectError(error, host: host, port: port) }
        }
        // Back to blocking mode: reads wait in poll, with their own timeout.
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
        var yes: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &yes, socklen_t(MemoryLayout<Int32>.size))
        keep = true
        return TCPSocket(descriptor: descriptor)
    }

    private static func connectError(_ code: Int32, host: String, port: Int) -> SocketError {
        code == ECONNREFUSED
            ? .connectionRefused(host: host, port: port)
            : .connectFailed(host: host, port: port, reason: String(cString: strerror(code)))
    }

    public func write(_ bytes: [UInt8]) throws(SocketError) {
        var sent = 0
        while sent < bytes.count {
            let result = bytes.withUnsafeBytes { buffer in
                send(descriptor, buffer.baseAddress! + sent, buffer.count - sent, Self.sendFlags)
            }
            if result < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw .timedOut("sending: the peer took nothing for the send timeout") }
                throw .io("write failed: \(errorText())")
            }
            sent += result
        }
    }

    public func setSendTimeout(_ timeout: Duration) {
        let milliseconds = Self.milliseconds(timeout)
        var value = timeval(tv_sec: Int(milliseconds / 1000), tv_usec: Int(milliseconds % 1000) * 1000)
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    public func read(maximum: Int, timeout: Duration?) throws(SocketError) -> [UInt8] {
        if let timeout {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            var ready: Int32
            repeat { ready = poll(&poller, 1, Self.milliseconds(timeout)) } while ready < 0 && errno == EINTR
            if ready == 0 { throw .timedOut("waiting for data") }
        }
        var buffer = [UInt8](repeating: 0, count: maximum)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, maximum, 0) }
            if count >= 0 {
                buffer.removeLast(maximum - count)
                return buffer
            }
            if errno == EINTR { continue }
            if errno == ECONNRESET { return [] }
            throw .io("read failed: \(errorText())")
        }
    }

    /// Cuts both directions (a blocked read returns); nothing once the socket is closed.
    public func shutdown() { handle.shutdown() }

    /// Releases the descriptor, once.
    public func close() { handle.close() }

    #if canImport(Glibc)
    private static let sendFlags = Int32(MSG_NOSIGNAL)
    #else
    private static let sendFlags: Int32 = 0
    #endif

    static func milliseconds(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}

private func errorText() -> String { String(cString: strerror(errno)) }

// `close` and `connect` are shadowed by the methods above; these reach the C functions.
#if canImport(Glibc)
@inline(__always) private func Glibc_close(_ descriptor: Int32) { _ = Glibc.close(descriptor) }
@inline(__always) private func Glibc_connect(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>!, _ length: socklen_t) -> Int32 {
    Glibc.connect(fd, address, length)
}
#else
@inline(__always) private func Glibc_close(_ descriptor: Int32) { _ = Darwin.close(descriptor) }
@inline(__always) private func Glibc_connect(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>!, _ length: socklen_t) -> Int32 {
    Darwin.connect(fd, address, length)
}
#endif

/// A socket's file descriptor, shut down and closed at most once, the two under one lock. Once
/// it is closed its number may belong to another socket of the process (a listener, a
/// URLSession connection): a late `shutdown` or a second `close` must not reach that one.
package final class SocketDescriptor: Sendable {
    package let value: Int32
    private let closed = Mutex(false)

    package init(_ value: Int32) { self.value = value }

    /// Cuts both directions (a blocked read or accept returns); nothing once closed.
    package func shutdown() {
        closed.withLock { closed in
            guard !closed else { return }
            #if canImport(Glibc)
            _ = Glibc.shutdown(value, Int32(SHUT_RDWR))
            #else
            _ = Darwin.shutdown(value, SHUT_RDWR)
            #endif
        }
    }

    /// Releases the descriptor, once.
    package func close() {
        closed.withLock { closed in
            guard !closed else { return }
            closed = true
            Glibc_close(value)
        }
    }
}
