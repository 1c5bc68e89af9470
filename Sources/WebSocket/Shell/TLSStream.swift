import COpenSSL
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// How to check a TLS server.
public struct TLSOptions: Sendable, Equatable {
    /// Verify the certificate chain and the host name (on unless the user says `--insecure`).
    public var verifyPeer = true
    /// Trust these PEM certificates instead of the system's store (a private CA, a test setup).
    public var caFile: String?

    public init(verifyPeer: Bool = true, caFile: String? = nil) {
        self.verifyPeer = verifyPeer
        self.caFile = caFile
    }
}

/// TLS 1.2+ over a `TCPSocket`, through the system's OpenSSL 3, for `wss://`.
///
/// Certificate and host-name verification are on by default. One SSL object is shared by the
/// reading thread and writers, so every OpenSSL call holds a lock; the descriptor is non-blocking
/// and the reader waits in `poll` without the lock, so a write never waits behind a read.
public final class TLSStream: ByteStream, @unchecked Sendable {
    private let socket: TCPSocket
    private let context: OpaquePointer
    private let ssl: OpaquePointer
    private let lock = NSLock()
    /// See `setSendTimeout` (guarded by `lock`).
    private var sendTimeout: Duration?

    private init(socket: TCPSocket, context: OpaquePointer, ssl: OpaquePointer) {
        self.socket = socket
        self.context = context
        self.ssl = ssl
    }

    public static func connect(host: String, port: Int, timeout: Duration, options: TLSOptions) throws(SocketError) -> TLSStream {
        let deadline = ContinuousClock.now + timeout
        let socket = try TCPSocket.connect(host: host, port: port, timeout: timeout)
        let descriptor = socket.descriptor
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)

        guard let context = SSL_CTX_new(TLS_client_method()) else {
            socket.close()
            throw .tls("cannot create an OpenSSL context: \(lastError())")
        }
        _ = comfyq_ssl_ctx_set_min_proto_version(context, comfyq_tls1_2_version())
        _ = comfyq_ssl_ctx_set_partial_write_modes(context)
        if options.verifyPeer {
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
            let loaded =
                options.caFile.map { SSL_CTX_load_verify_locations(context, $0, nil) }
                ?? SSL_CTX_set_default_verify_paths(context)
            guard loaded == 1 else {
                SSL_CTX_free(context)
                socket.close()
                throw .tls("cannot load trusted certificates\(options.caFile.map { " from \($0)" } ?? ""): \(lastError())")
            }
        } else {
            SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        }
        guard let ssl = SSL_new(context) else {
            SSL_CTX_free(context)
            socket.close()
            throw .tls("cannot create an OpenSSL session: \(lastError())")
        }
        let stream = TLSStream(socket: socket, context: context, ssl: ssl)
        SSL_set_fd(ssl, descriptor)
        if isIPAddress(host) {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
        } else {
            SSL_set1_host(ssl, host)
            _ = comfyq_ssl_set_tlsext_host_name(ssl, host)  // SNI, for proxies serving many names
        }
        do {
            try stream.handshake(deadline: deadline, host: host)
        } catch {
            stream.close()
            throw error
        }
        return stream
    }

    private func handshake(deadline: ContinuousClock.Instant, host: String) throws(SocketError) {
        while true {
            let result = SSL_connect(ssl)
            if result == 1 { return }
            let error = SSL_get_error(ssl, result)
            let events: Int16
            switch error {
            case SSL_ERROR_WANT_READ: events = Int16(POLLIN)
            case SSL_ERROR_WANT_WRITE: events = Int16(POLLOUT)
            default:
                let verify = SSL_get_verify_result(ssl)
                if verify != X509_V_OK {
                    throw .tls("certificate verify failed for \(host): \(String(cString: X509_verify_cert_error_string(verify)))")
                }
                throw .tls("handshake with \(host) failed: \(lastError())")
            }
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero, wait(events, timeout: remaining) else { throw .timedOut("in the TLS handshake with \(host)") }
        }
    }

    public func setSendTimeout(_ timeout: Duration) {
        lock.lock()
        defer { lock.unlock() }
        sendTimeout = timeout
    }

    public func write(_ bytes: [UInt8]) throws(SocketError) {
        lock.lock()
        defer { lock.unlock() }
        var sent = 0
        // The peer must take something within the send timeout (from the last progress).
        var deadline = sendTimeout.map { ContinuousClock.now + $0 }
        func waitToWrite(_ events: Int16) throws(SocketError) {
            let remaining = deadline.map { $0 - ContinuousClock.now }
            if let remaining, remaining <= .zero || !wait(events, timeout: remaining) {
                throw .timedOut("sending: the peer took nothing for the send timeout")
            }
            if remaining == nil { _ = wait(events, timeout: nil) }
        }
        while sent < bytes.count {
            let result = bytes.withUnsafeBytes { buffer in
                SSL_write(ssl, buffer.baseAddress! + sent, Int32(clamping: buffer.count - sent))
            }
            if result > 0 {
                sent += Int(result)
                deadline = sendTimeout.map { ContinuousClock.now + $0 }
                continue
            }
            let error = SSL_get_error(ssl, result)
            let systemError = errno
            switch error {
            case SSL_ERROR_WANT_WRITE: try waitToWrite(Int16(POLLOUT))
            case SSL_ERROR_WANT_READ: try waitToWrite(Int16(POLLIN))
            case SSL_ERROR_SYSCALL where systemError == EAGAIN || systemError == EINTR:
                try waitToWrite(Int16(POLLOUT))
            default: throw .io("TLS write failed: \(Self.describe(error, systemError))")
            }
        }
    }

    public func read(maximum: Int, timeout: Duration?) throws(SocketError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: maximum)
        let deadline = timeout.map { ContinuousClock.now + $0 }
        while true {
            lock.lock()
            let result = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32(clamping: maximum)) }
            let error = result > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, result)
            let systemError = errno
            lock.unlock()
            if result > 0 {
                buffer.removeLast(maximum - Int(result))
                return buffer
            }
            switch error {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                let remaining = deadline.map { $0 - ContinuousClock.now }
                if let remaining, remaining <= .zero { throw .timedOut("waiting for data") }
                let events = error == SSL_ERROR_WANT_READ ? Int16(POLLIN) : Int16(POLLOUT)
                if !wait(events, timeout: remaining) && remaining != nil { throw .timedOut("waiting for data") }
            case SSL_ERROR_ZERO_RETURN:
                return []  // the peer closed TLS cleanly
            case SSL_ERROR_SYSCALL where systemError == 0 || systemError == ECONNRESET || systemError == EPIPE:
                return []  // the TCP connection ended (or we shut it down)
            case SSL_ERROR_SYSCALL where systemError == EAGAIN || systemError == EINTR:
                continue
            default:
                throw .io("TLS read failed: \(Self.describe(error, systemError))")
            }
        }
    }

    public func shutdown() { socket.shutdown() }

    public func close() {
        lock.lock()
        SSL_free(ssl)
        SSL_CTX_free(context)
        lock.unlock()
        socket.close()
    }

    /// Waits until the descriptor is ready for `events` (or has hung up); false on timeout.
    private func wait(_ events: Int16, timeout: Duration?) -> Bool {
        var poller = pollfd(fd: socket.descriptor, events: events, revents: 0)
        var ready: Int32
        repeat {
            ready = poll(&poller, 1, timeout.map { TCPSocket.milliseconds($0) } ?? -1)
        } while ready < 0 && errno == EINTR
        return ready > 0
    }

    private func lastError() -> String { Self.lastError() }

    /// An SSL_get_error code with OpenSSL's queued reason, or the system error behind it.
    static func describe(_ error: Int32, _ systemError: Int32) -> String {
        if error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 {
            return systemError == 0 ? "connection closed" : String(cString: strerror(systemError))
        }
        return "\(lastError()) (SSL error \(error))"
    }

    /// The oldest queued OpenSSL error, in its own words.
    static func lastError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "unknown error" }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        ERR_clear_error()
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}
