import COpenSSL
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// SHA-256 of files, with OpenSSL, read in 1 MB pieces.
public enum FileHash {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The file's SHA-256 as 64 lower-case hex digits.
    public static func sha256(of path: String) throws(Failure) -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw Failure(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        guard let context = EVP_MD_CTX_new() else { throw Failure(description: "cannot start a SHA-256") }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else { throw Failure(description: "cannot start a SHA-256") }
        let size = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let got = read(descriptor, buffer, size)
            if got < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if got == 0 { break }
            guard EVP_DigestUpdate(context, buffer, got) == 1 else { throw Failure(description: "SHA-256 of \(path) failed") }
        }
        return try finish(context)
    }

    /// SHA-256 of bytes in memory.
    public static func sha256(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = bytes.withUnsafeBytes { data in digest.withUnsafeMutableBufferPointer { EVP_Digest(data.baseAddress, data.count, $0.baseAddress, &length, EVP_sha256(), nil) } }
        return hex(digest)
    }

    private static func finish(_ context: OpaquePointer) throws(Failure) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        guard digest.withUnsafeMutableBufferPointer({ EVP_DigestFinal_ex(context, $0.baseAddress, &length) }) == 1 else {
            throw Failure(description: "SHA-256 failed")
        }
        return hex(digest)
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
