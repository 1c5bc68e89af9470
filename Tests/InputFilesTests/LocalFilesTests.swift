import Foundation
import InputFiles
import TestSupport
import Testing

@Suite struct LocalFilesWriteTests {
    let folder = TestFolder.root.appendingPathComponent("comfyq-write-\(UUID())").path

    init() throws { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }

    func names() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: folder).sorted() }

    @Test(arguments: [true, false])
    func writesAndReplacesLeavingNothingBeside(atomically: Bool) throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/out.json"
        try LocalFiles.write(Array("first, and longer".utf8), to: path, atomically: atomically)
        try LocalFiles.write(Array("second".utf8), to: path, atomically: atomically)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "second")
        #expect(try names() == ["out.json"])  // no temporary file left
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode.map { $0 & 0o600 } == 0o600, "readable and writable by its owner: \(String(describing: mode))")
    }

    @Test func anEmptyFile() throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try LocalFiles.write([], to: folder + "/empty", atomically: true)
        #expect(FileManager.default.contents(atPath: folder + "/empty") == Data())
    }

    /// A folder that is not there, a folder in its place: the reason, as errno says it, and no
    /// temporary file left behind.
    @Test(arguments: [true, false])
    func failuresSayWhyAndLeaveNothing(atomically: Bool) throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(throws: POSIXError(.ENOENT)) { try LocalFiles.write([1], to: folder + "/missing/out.png", atomically: atomically) }
        try FileManager.default.createDirectory(atPath: folder + "/taken", withIntermediateDirectories: false)
        #expect(throws: POSIXError(.EISDIR)) { try LocalFiles.write([1], to: folder + "/taken", atomically: atomically) }
        #expect(try names() == ["taken"])
    }
}
