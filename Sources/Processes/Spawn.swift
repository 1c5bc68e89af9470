import CProcessShim
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starting programs without a shell and without Foundation's `Process` (whose waiting
/// misbehaves off the main thread on Linux): posix_spawn into a process group of its own, with
/// default signal handling, so a whole tree can be stopped with one signal to the group.
public enum Spawn {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// Finds `program` on `path` (a `PATH` value, not necessarily this process's own); a name
    /// with a `/` is taken as it is, relative to `cwd` when given.
    public static func locate(_ program: String, path: String?, cwd: String? = nil) -> String? {
        if program.contains("/") {
            let full = program.hasPrefix("/") || cwd == nil ? program : "\(cwd!)/\(program)"
            return FileManager.default.isExecutableFile(atPath: full) ? full : nil
        }
        for folder in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(folder)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Starts `argv` with `environment` (the whole environment, not additions), standard input
    /// from /dev/null and standard output and error to `output` (a descriptor this call does
    /// not close), in `cwd` when given. `closing`: descriptors the child must not keep.
    /// Returns the pid, which is also the process group's id.
    public static func start(
        _ argv: [String], environment: [String: String], cwd: String? = nil, output: Int32, closing: [Int32] = []
    ) throws(Failure) -> pid_t {
        guard let program = argv.first, !program.isEmpty else { throw Failure("argv must name a program") }
        guard let executable = locate(program, path: environment["PATH"], cwd: cwd) else {
            throw Failure(program.contains("/") ? "no such program: \(program)" : "\(program) is not on PATH")
        }
        if let cwd {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: cwd, isDirectory: &isFolder), isFolder.boolValue else {
                throw Failure("no such folder: \(cwd)")
            }
        }
        #if canImport(Glibc)
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        #else
        var actions: posix_spawn_file_actions_t?
        var attributes: posix_spawnattr_t?
        #endif
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attributes)
        defer {
            posix_spawn_file_actions_destroy(&actions)
            posix_spawnattr_destroy(&attributes)
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, output, 1)
        posix_spawn_file_actions_adddup2(&actions, output, 2)
        // Nothing of comfyq's leaks into the child: a server started here must not hold its
        // sockets, its database, or the descriptor a parent watches for comfyq's exit.
        if comfyq_spawn_addclosefrom(&actions, 3) != 0 {
            for descriptor in closing { posix_spawn_file_actions_addclose(&actions, descriptor) }
        }
        if let cwd { comfyq_spawn_addchdir(&actions, cwd) }
        // Default handling and an empty mask: comfyq itself ignores SIGINT and SIGTERM, which a
        // child would inherit.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGQUIT] { sigaddset(&defaults, signal) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let arguments = argv.map { strdup($0) } + [nil]
        let variables = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in arguments { free(pointer) }
            for pointer in variables { free(pointer) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, arguments, variables)
        guard spawned == 0 else { throw Failure("cannot run \(program): \(String(cString: strerror(spawned)))") }
        return pid
    }

    /// How a wait status reads: "exited with status 1", "killed by signal 9".
    public static func describe(status: Int32) -> String {
        let signal = status & 0x7f
        return signal == 0 ? "exited with status \((status >> 8) & 0xff)" : "was killed by signal \(signal)"
    }

    /// The exit code as a shell gives it: the status, or 128 + the signal.
    public static func exitCode(status: Int32) -> Int32 {
        (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
