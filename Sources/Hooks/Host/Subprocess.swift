import Foundation
import Processes

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a program with a deadline (`Spawn`): one pipe for stdout and stderr, poll until the
/// output ends or the time is up, then SIGKILL to the whole group.
enum Subprocess {
    struct Outcome {
        /// The exit status, or 128 + the signal that ended it.
        var status: Int32
        var output: String
        var timedOut: Bool
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func run(_ argv: [String], environment: [String: String], timeout: Double, maximumOutput: Int = 1 << 20) throws(Failure) -> Outcome {
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw Failure(description: "pipe: \(String(cString: strerror(errno)))") }
        let (readEnd, writeEnd) = (pipeEnds[0], pipeEnds[1])
        defer { close(readEnd) }
        let pid: pid_t
        do {
            pid = try Spawn.start(argv, environment: environment, output: writeEnd, closing: [readEnd, writeEnd])
        } catch {
            close(writeEnd)
            throw Failure(description: error.description)
        }
        close(writeEnd)

        let deadline = Date().addingTimeInterval(max(0, timeout))
        var output: [UInt8] = []
        var timedOut = false
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 {
                timedOut = true
                break
            }
            var poller = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(min(remaining * 1000 + 1, 60_000)))
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { continue }
            let count = read(readEnd, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            if output.count < maximumOutput { output += chunk[0..<min(count, maximumOutput - output.count)] }
        }
        var status: Int32 = 0
        // The output has ended; the program may still run (it closed its output): wait for it
        // until the deadline as well.
        while !timedOut {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR { break }
            if deadline.timeIntervalSinceNow <= 0 { timedOut = true } else { usleep(2000) }
        }
        if timedOut {
            kill(-pid, SIGKILL)
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        return Outcome(status: Spawn.exitCode(status: status), output: String(decoding: output, as: UTF8.self), timedOut: timedOut)
    }
}
