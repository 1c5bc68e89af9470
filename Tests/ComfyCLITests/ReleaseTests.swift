import ComfyCLI
import ComfyCore
import Foundation
import TestSupport
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The release artifacts (`scripts/package.sh`: the tarball and the wheel) on a machine that has
/// never seen Swift: a bare Debian 12 root made with `debootstrap` (what a fresh Debian has, plus
/// `python3` and `python3-venv`; no Swift, no `-dev` package), entered with `chroot`. Each
/// artifact is installed there as the README says and used for real: `--version`, `ldd`,
/// `doctor` against a `comfyq simulate` started from the same binary, a two-item job with a Lua
/// hook and `--serve`, and a PostgreSQL queue outside the root.
@Suite(.serialized) struct ReleaseTests {
    static let isRoot = getuid() == 0
    static let debootstrap = ["/usr/sbin/debootstrap", "/usr/bin/debootstrap"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let skip = Comment(
        rawValue: !isRoot
            ? "not root: chroot and mount need it (CI runs as root)"
            : "debootstrap is not installed (scripts/setup.sh installs it): the release artifacts are not tried in a bare Debian")

    /// The artifacts: `COMFYQ_DIST` (scripts/test.sh makes them there first), else made now.
    static func artifacts(into folder: String) async throws -> (tarball: String, wheel: String) {
        var directory = ProcessInfo.processInfo.environment["COMFYQ_DIST"] ?? ""
        if directory.isEmpty {
            directory = folder + "/dist"
            let (status, output) = try await run("/bin/bash", [Paths.packageRoot.appendingPathComponent("scripts/package.sh").path, directory], timeout: 900)
            #expect(status == 0, "scripts/package.sh: \(output.suffix(3000))")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        let tarball = try #require(names.first { $0.hasPrefix("comfyq-\(ComfyQ.version)-linux-") && $0.hasSuffix(".tar.gz") }, "no tarball in \(directory): \(names)")
        let wheel = try #require(names.first { $0.hasPrefix("comfyq-\(ComfyQ.version)-py3-none-manylinux_") && $0.hasSuffix(".whl") }, "no wheel in \(directory): \(names)")
        return (directory + "/" + tarball, directory + "/" + wheel)
    }

    /// Runs a program to its end (at most `timeout` s), its output to a file read afterwards.
    static func run(_ executable: String, _ arguments: [String], timeout: Double = 300) async throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = Hermetic.childEnvironment()
        let log = TestFolder.root.appendingPathComponent("comfyq-release-\(UUID()).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = process.standardOutput
        try process.run()
        let status = try await eventually("\(executable) \(arguments.prefix(2).joined(separator: " ")) to exit", timeout: timeout, interval: 0.1) {
            process.isRunning ? nil : process.terminationStatus
        }
        return (status, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }

    /// A bare Debian root, entered with chroot (its /proc mounted while it is used).
    final class Root: @unchecked Sendable {
        let path: String
        private var mounted = false

        init(_ path: String) { self.path = path }

        func create() async throws {
            let (status, output) = try await ReleaseTests.run(
                ReleaseTests.debootstrap!, ["--variant=minbase", "--include=python3,python3-venv", "bookworm", path, "http://deb.debian.org/debian"],
                timeout: 600)
            #expect(status == 0, "debootstrap: \(output.suffix(2000))")
            let (mount, said) = try await ReleaseTests.run("/bin/mount", ["-t", "proc", "proc", path + "/proc"])
            #expect(mount == 0, "mount /proc: \(said)")
            mounted = mount == 0
        }

        /// The environment inside: a fresh root user's, nothing of the test machine's.
        static let environment = ["HOME=/root", "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG=C.UTF-8"]

        /// Runs a shell script inside the root, as root.
        func shell(_ script: String, timeout: Double = 300) async throws -> (Int32, String) {
            try await ReleaseTests.run("/usr/sbin/chroot", [path, "/usr/bin/env", "-i"] + Self.environment + ["/bin/sh", "-c", script], timeout: timeout)
        }

        /// Starts a program inside the root; its output goes to `log` (a path inside the root).
        func start(_ arguments: [String], log: String) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/chroot")
            process.arguments = [path, "/usr/bin/env", "-i"] + Self.environment + arguments
            _ = FileManager.default.createFile(atPath: path + log, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: path + log))
            process.standardError = process.standardOutput
            try process.run()
            return process
        }

        func read(_ inside: String) -> String { (try? String(contentsOfFile: path + inside, encoding: .utf8)) ?? "" }

        func unmount() {
            guard mounted else { return }
            mounted = false
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/umount")
            process.arguments = ["-l", path + "/proc"]
            try? process.run()
            process.waitUntilExit()
        }

        deinit { unmount() }
    }

    static func stop(_ process: Process) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// A URL the first line matching `prefix` of a log inside the root ends with.
    static func url(in root: Root, log: String, after prefix: String) async throws -> String {
        try await eventually("\(prefix) in \(log)", timeout: 60, describe: { root.read(log) }) { () -> String? in
            root.read(log).split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { $0.split(separator: " ").last.map(String.init) }
        }
    }

    @Test(.enabled(if: isRoot && debootstrap != nil, skip))
    func theTarballAndTheWheelRunInABareDebian() async throws {
        let folder = TestFolder.root.appendingPathComponent("comfyq-release-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let root = Root(folder + "/debian")
        defer {
            root.unmount()
            try? FileManager.default.removeItem(atPath: folder)
        }
        let (tarball, wheel) = try await Self.artifacts(into: folder)
        try await root.create()
        // Nothing of Swift in the root, and no -dev package.
        let (_, packages) = try await root.shell("dpkg-query -W -f='${Package}\\n'")
        #expect(!packages.contains("swift") && !packages.split(separator: "\n").contains { $0.hasSuffix("-dev") }, "\(packages)")
        let work = root.path + "/work"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        for file in [tarball, wheel] {
            try FileManager.default.copyItem(atPath: file, toPath: work + "/" + (file as NSString).lastPathComponent)
        }
        let tarballName = (tarball as NSString).lastPathComponent
        let wheelName = (wheel as NSString).lastPathComponent

        // The tarball, as the README installs it: into a prefix, bin/comfyq on the PATH.
        let (untar, untarred) = try await root.shell("mkdir -p /opt/comfyq && tar -xzf /work/\(tarballName) -C /opt/comfyq --strip-components=1")
        #expect(untar == 0, "\(untarred)")
        let (version, said) = try await root.shell("/opt/comfyq/bin/comfyq --version --verbose")
        #expect(version == 0 && said.hasPrefix("comfyq \(ComfyQ.version) (commit "), "\(said)")
        #expect(said.contains("binary: /opt/comfyq/bin/comfyq") && said.contains("SQLite: ") && said.contains("libcurl: "), "\(said)")
        let (_, libraries) = try await root.shell("ldd /opt/comfyq/bin/comfyq")
        #expect(!libraries.contains("not found"), "\(libraries)")
        #expect(libraries.contains("/opt/comfyq/bin/../lib/comfyq/libsqlite3.so"), "the libraries come from beside the binary: \(libraries)")

        // A simulator from the same binary, and doctor against it.
        let simulator = try root.start(["/opt/comfyq/bin/comfyq", "simulate", "--port", "0", "--output", "/sim", "--step-time", "150ms"], log: "/work/simulator.log")
        defer { Self.stop(simulator) }
        let server = try await Self.url(in: root, log: "/work/simulator.log", after: "comfyq simulator listening on")
        let (doctor, examined) = try await root.shell("/opt/comfyq/bin/comfyq doctor --server \(server)")
        #expect(doctor == 0, "\(examined)")

        // A two-item job with a Lua hook, served in a browser while it runs.
        let workflow = try String(contentsOf: Paths.packageRoot.appendingPathComponent("jobs/workflows/txt2img.json"), encoding: .utf8)
        try workflow.write(toFile: work + "/txt2img.json", atomically: true, encoding: .utf8)
        try """
            {name: "night", workflow: "txt2img.json", seeds: {start: 1, count: 2},
             set: {"KSampler.steps": 4, "Empty Latent Image.width": 64, "Empty Latent Image.height": 64}, output: {folder: "out"}}
            """.write(toFile: work + "/night.json", atomically: true, encoding: .utf8)
        try """
            function on_batch_done(batch)
                local file = assert(io.open("/work/hook.txt", "w"))
                file:write("done " .. batch.done .. "\\n")
                file:close()
            end
            """.write(toFile: work + "/hook.lua", atomically: true, encoding: .utf8)
        let run = try root.start(
            ["/opt/comfyq/bin/comfyq", "run", "/work/night.json", "--server", server, "--hook", "/work/hook.lua", "--serve", "127.0.0.1:0", "--db", "/work/queue.db"],
            log: "/work/run.log")
        defer { Self.stop(run) }
        let page = try await Self.url(in: root, log: "/work/run.log", after: "serving the queue at")
        let (body, response) = try await URLSession(configuration: .ephemeral).data(from: URL(string: page)!)
        #expect((response as? HTTPURLResponse)?.statusCode == 200 && String(decoding: body, as: UTF8.self).contains("night"), "\(page)")
        // The pages' scripts, from the binary.
        let (script, _) = try await URLSession(configuration: .ephemeral).data(from: URL(string: page.split(separator: "?")[0] + "assets/viewer.js")!)
        #expect(String(decoding: script, as: UTF8.self).contains("/api/jobs/NAME/items/INDEX"))
        let status = try await eventually("the run to end", timeout: 120, describe: { root.read("/work/run.log") }) { run.isRunning ? nil : run.terminationStatus }
        #expect(status == 0, "\(root.read("/work/run.log"))")
        let outputs = try FileManager.default.contentsOfDirectory(atPath: work + "/out").sorted()
        #expect(outputs.filter { $0.hasSuffix(".png") && $0.hasPrefix("night_") } == ["night_0.png", "night_1.png"], "\(outputs)")
        #expect(outputs.filter { $0.hasSuffix(".json") } == ["night_0.json", "night_1.json"], "\(outputs)")
        #expect(root.read("/work/hook.txt") == "done 2\n", "\(root.read("/work/run.log"))")
        // Its ComfyUI extension comes from the binary too.
        let (extensionInstalled, installSaid) = try await root.shell(
            "mkdir -p /ComfyUI/custom_nodes && /opt/comfyq/bin/comfyq comfyui install /ComfyUI && test -s /ComfyUI/custom_nodes/comfyq/web/comfyq.js")
        #expect(extensionInstalled == 0, "\(installSaid)")

        // A PostgreSQL queue on a server outside the root.
        if PostgresServer.available {
            let database = try PostgresServer.database()
            let (queue, queued) = try await root.shell("/opt/comfyq/bin/comfyq add /work/night.json --db '\(database)' --no-preflight && /opt/comfyq/bin/comfyq status --db '\(database)'")
            #expect(queue == 0 && queued.contains("night"), "\(queued)")
        }

        // The wheel, into a fresh virtual environment with pip (no index: the file is all it needs).
        let (pip, installed) = try await root.shell(
            "python3 -m venv /venv && /venv/bin/pip install --no-index --disable-pip-version-check /work/\(wheelName)", timeout: 300)
        #expect(pip == 0, "\(installed)")
        let (wheelVersion, wheelSaid) = try await root.shell(". /venv/bin/activate && comfyq --version && ldd \"$(command -v comfyq)\"")
        #expect(wheelVersion == 0 && wheelSaid.hasPrefix("comfyq \(ComfyQ.version) (commit ") && !wheelSaid.contains("not found"), "\(wheelSaid)")
        #expect(wheelSaid.contains("/venv/bin/../lib/comfyq/libsqlite3.so"), "\(wheelSaid)")
        #expect(FileManager.default.fileExists(atPath: root.path + "/venv/share/man/man1/comfyq.1"))
        let (wheelRun, wheelRan) = try await root.shell(
            ". /venv/bin/activate && comfyq doctor --server \(server) >/dev/null && comfyq run /work/night.json --server \(server) --db /work/venv-queue.db --overwrite",
            timeout: 180)
        #expect(wheelRun == 0 && wheelRan.contains("finished: 2 done, 0 failed"), "\(wheelRan)")
        let sizes = [tarball, wheel].map { path in
            "\((path as NSString).lastPathComponent): \(((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0) / 1_048_576) MB"
        }
        print("release artifacts: \(sizes.joined(separator: ", "))")
    }
}
