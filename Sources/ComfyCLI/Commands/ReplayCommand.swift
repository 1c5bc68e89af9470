import ComfyCore
import Foundation

/// `comfyq replay TRACE.jsonl [--json]`
enum ReplayCommand {
    static let spec = CommandSpec(
        name: "replay",
        abstract: "Replay a recorded ComfyUI session through the progress engine.",
        discussion: """
            Reads a trace (one JSON object a line: "ws" WebSocket messages, "http" exchanges with
            the submitted graph and /history answers) and prints every progress update and phase
            transition as 'comfyq run' would show it. Attach traces to bug reports.
            """,
        arguments: [ArgumentSpec("trace", help: "A trace file in JSON Lines format.")],
        options: [.flag("json", help: "Print one JSON object a line (schema 1) instead of text.")],
        run: run)

    static func run(_ arguments: ParsedArguments, _ console: Console) async throws -> ExitCode {
        let path = arguments.positionals[0]
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw CommandFailure("\(path): cannot read the trace (\(error.localizedDescription))")
        }
        let json = arguments.flag("json")
        var replay = TraceReplay()
        var number = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let records: [TraceReplay.Record]
            do {
                records = try replay.feed(line: String(line), number: number)
            } catch {
                throw CommandFailure("\(path): \(error)")
            }
            for record in records {
                console.print(
                    json
                        ? ProgressFormat.jsonLine(record.update, time: record.time)
                        : ProgressFormat.textLine(record.update, time: record.time))
            }
        }
        console.printError(summary(replay, path: path))
        return .success
    }

    /// One line per prompt with its final phase, then the skipped message types.
    static func summary(_ replay: TraceReplay, path: String) -> String {
        var lines: [String] = []
        for id in replay.submitted {
            if let final = replay.finished.last(where: { $0.promptID == id }) {
                var line = "\(ProgressFormat.shortID(id)): \(final.phase)"
                if case .failed(let failure)? = final.outcome { line += " (\(failure))" }
                lines.append(line)
            } else if let snapshot = replay.engine.snapshot(of: id) {
                lines.append("\(ProgressFormat.shortID(id)): still \(snapshot.phase) when the trace ends")
            }
        }
        if replay.submitted.isEmpty { lines.append("\(path): no prompt was submitted in this trace") }
        if !replay.skippedTypes.isEmpty {
            let counts = replay.skippedTypes.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }
            lines.append("skipped message types: " + counts.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}
