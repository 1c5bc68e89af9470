#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import WebSocket

/// A listening TCP socket (IPv4 or IPv6), opened with `SOCK_CLOEXEC`.
public final class Listener: @unchecked Sendable {
    private let handle: SocketDescriptor
    public var descriptor: Int32 { handle.value }
    public let port: Int

    public init(host: String, port: Int) throws(SocketError) {
        let descriptor = try TCPSocket.withAddresses(host: host, port: port, passive: true) { (addresses) throws(SocketError) -> Int32 in
            guard let address = addresses.first else { throw .io("cannot listen on \(host):\(port): no address") }
            #if canImport(Glibc)
            let descriptor = socket(address.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            #else
            let descriptor = socket(address.ai_family, SOCK_STREAM, 0)
            #endif
            guard descriptor >= 0 else { throw .io("cannot open a socket: \(String(cString: strerror(errno)))") }
            var yes: Int32 = 1
            setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
            guard bind(descriptor, address.ai_addr, address.ai_addrlen) == 0, listen(descriptor, 128) == 0 else {
                let reason = String(cString: strerror(errno))
                SocketDescriptor(descriptor).close()
                throw .io("cannot listen on \(host):\(port): \(reason)")
            }
            return descriptor
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(descriptor, $0, &length) }
        }
        let bound: UInt16 =
            storage.ss_family == sa_family_t(AF_INET6)
            ? withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_port } }
            : withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port } }
        handle = SocketDescriptor(descriptor)
        self.port = Int(UInt16(bigEndian: bound))
    }

    /// The next connection, or nil once the listener is shut down.
    public func accept() -> TCPSocket? {
        while true {
            // accept4 is not exported to Swift; set close-on-exec right after accepting.
            #if canImport(Glibc)
            let client = Glibc.accept(descriptor, nil, nil)
            #else
            let client = Darwin.accept(descriptor, nil, nil)
            #endif
            if client >= 0 {
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                var yes: Int32 = 1
                setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &yes, socklen_t(MemoryLayout<Int32>.size))
                return TCPSocket(accepted: client)
            }
            if errno == EINTR || errno == ECONNABORTED { continue }
            return nil
        }
    }

    /// Stops accepting: the accept loop's `accept` returns nil, and that thread then releases
    /// the descriptor (`close`). Only the accept thread closes it, and only after its last
    /// `accept`, so no call here or there can reach a socket that got the number afterwards.
    public func shutdown() { handle.shutdown() }

    /// Releases the descriptor, once (the accept thread, when `accept` returned nil).
    public func close() { handle.close() }
}
