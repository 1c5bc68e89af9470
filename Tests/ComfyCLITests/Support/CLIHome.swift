import Foundation
import TestSupport

/// A temporary folder for one test of the binary: its own queue, configuration and state (with
/// an empty hooks folder, so the user's own hooks do not join in). Removed when released.
final class CLIHome: @unchecked Sendable {
    let root: URL

    init(_ prefix: String) throws {
        root = TestFolder.root.appendingPathComponent("\(prefix)-\(UUID())")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("config/comfyq/hooks"), withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    func path(_ name: String) -> String { root.appendingPathComponent(name).path }

    var environment: [String: String] { ["COMFYQ_DB": path("q.db"), "XDG_CONFIG_HOME": path("config"), "XDG_STATE_HOME": path("state")] }

    func write(_ name: String, _ text: String) throws -> String {
        try text.write(toFile: path(name), atomically: true, encoding: .utf8)
        return path(name)
    }
}
