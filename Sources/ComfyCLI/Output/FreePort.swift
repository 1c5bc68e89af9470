import Foundation
import WebSocket

/// A port nobody listens on now, and the path of this very program (to start it again as
/// `comfyq simulate`).
enum FreePort {
    static func find() throws -> Int {
        do { return try TCPSocket.freeLoopbackPort() } catch { throw CommandFailure("\(error)") }
    }

    /// This program's own path (`/proc/self/exe` on Linux).
    static var executable: String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return Bundle.main.executablePath ?? CommandLine.arguments[0]
    }
}
