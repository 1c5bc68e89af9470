import ComfyClient
import ComfyCore
import Foundation
import Hooks
import QueueStore
import Runner
import Simulator
import WebSocket
import Workloads
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Median of `rounds` timings of `body`, in seconds.
func measure(rounds: Int = 7, _ body: () -> Void) -> Double {
    var samples: [Double] = []
    body()  // warm-up
    for _ in 0..<rounds {
        let start = ContinuousClock.now
        body()
        let elapsed = ContinuousClock.now - start
        samples.append(elapsed.seconds)
    }
    return samples.sorted()[samples.count / 2]
}

func format(_ value: Double, _ decimals: Int = 2) -> String { String(format: "%.\(decimals)f", value) }

/// Resident set size of this process (or of the process with pid `process`), from /proc (Linux).
func residentBytes(of process: String = "self") -> Int {
    guard let text = try? String(contentsOfFile: "/proc/\(process)/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

// MARK: WebSocket and HTTP

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Starts one of the tests' Python peers and returns it with its port.
nonisolated(unsafe) var pythonLifelines: [Pipe] = []

func startPython(_ script: String, _ arguments: [String] = []) -> (Process, Int)? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = [repositoryRoot.appendingPathComponent(script).path] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    // The helper exits at EOF on its stdin: the pipe lives (unclosed) as long as this process.
    let lifeline = Pipe()
    pythonLifelines.append(lifeline)
    process.standardInput = lifeline
    guard (try? process.run()) != nil else { return nil }
    var line = Data()
    while !line.contains(UInt8(ascii: "\n")) {
        let chunk = pipe.fileHandleForReading.availableData
        if chunk.isEmpty { break }
        line.append(chunk)
    }
    let text = String(decoding: line, as: UTF8.self)
    guard text.hasPrefix("PORT "), let port = Int(text.dropFirst(5).prefix { $0.isNumber }) else { return nil }
    return (process, port)
}

func stopPython(_ process: Process) {
    kill(process.processIdentifier, SIGKILL)
    var status: Int32 = 0
    waitpid(process.processIdentifier, &status, 0)
}

func seconds(since start: ContinuousClock.Instant) -> Double { (ContinuousClock.now - start).seconds }

extension String {
    func leftPad(_ width: Int, _ pad: Character = " ") -> String {
        String(repeating: pad, count: max(0, width - count)) + self
    }
}

/// The middle value (the upper middle of an even count).
func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

/// User and system CPU time of this process so far, in seconds.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}
