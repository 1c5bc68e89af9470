import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Ports for tests that must know a server's port before it starts, or that stop a server and
/// start another on the same port. They come from below Linux's ephemeral range (32768 and
/// up), which is where every port-0 listener and every outgoing connection gets its number: a
/// port freed for a moment is not taken by another test's simulator or client meanwhile.
public enum Ports {
    /// The first of `count` consecutive free ports in 20000..<32000, found by binding.
    public static func outsideEphemeralRange(_ count: Int = 1) throws -> Int {
        for _ in 0..<100 {
            let start = Int.random(in: 20000..<(32000 - count))
            if (0..<count).allSatisfy({ isFree(start + $0) }) { return start }
        }
        throw NotYet(what: "\(count) free ports below 32000", seconds: 0, lastSeen: "none")
    }

    /// Whether `port` can be bound on 127.0.0.1 now.
    public static func isFree(_ port: Int) -> Bool {
        onLoopback(port) { bind($0, $1, $2) == 0 }
    }

    /// Whether a connection to `port` is refused: what "the server is gone" means. (Binding the
    /// port is no test of that: a connection in TIME_WAIT, or another test's client that the
    /// kernel gave the same number as its ephemeral port, holds it too.)
    public static func nothingListens(on port: Int) -> Bool {
        onLoopback(port) { Glibc.connect($0, $1, $2) != 0 && errno == ECONNREFUSED }
    }

    /// A socket connected to 127.0.0.1:`port` (the caller closes it).
    public static func connect(_ port: Int) throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(descriptor)
            throw CocoaError(.fileReadUnknown)
        }
        return descriptor
    }

    /// Runs `body` with a new TCP socket and the address 127.0.0.1:`port`, then closes it.
    static func onLoopback(_ port: Int, _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Bool) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
}
