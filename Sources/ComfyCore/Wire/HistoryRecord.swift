/// A `/history/{prompt_id}` entry, reduced to what decides an item's fate.
public struct HistoryRecord: Sendable, Equatable {
    public var promptID: String
    /// `status.status_str`: "success" or "error" (interrupted prompts are "error" too).
    public var statusString: String?
    public var completed: Bool
    /// Output files by node id, in document order.
    public var outputs: [OutputFile]
    /// The terminal outcome, when the record has one.
    public var outcome: HistoryOutcome?

    /// Reads the answer to `GET /history/{id}`: `{}` (unknown or not finished: nil) or `{id: entry}`.
    public static func parse(_ body: JSONValue, promptID: String) -> HistoryRecord? {
        guard let entry = body[promptID]?.objectValue else { return nil }
        return HistoryRecord(promptID: promptID, entry: entry)
    }

    /// Reads one history entry.
    public init(promptID: String, entry: JSONObject) {
        self.promptID = promptID
        let status = entry["status"]
        statusString = status?["status_str"]?.stringValue
        completed = status?["completed"]?.boolValue ?? false
        var files: [OutputFile] = []
        for (_, output) in entry["outputs"]?.objectValue ?? JSONObject() {
            files += ServerEventDecoder.outputFiles(in: output)
        }
        outputs = files

        // The terminal message in status.messages tells error from interrupt.
        let messages = status?["messages"]?.arrayValue ?? []
        let terminal = messages.last { message in
            guard let name = message.arrayValue?.first?.stringValue else { return false }
            return ["execution_success", "execution_error", "execution_interrupted"].contains(name)
        }
        let name = terminal?.arrayValue?.first?.stringValue
        let data = terminal?.arrayValue?.dropFirst().first ?? .null
        // Partial execution: nodes that failed while the rest ran make the prompt a failure.
        let nodeErrors = messages.compactMap { message -> ExecutionFailure? in
            guard message.arrayValue?.first?.stringValue == "execution_node_error", let error = message.arrayValue?.dropFirst().first else { return nil }
            return ExecutionFailure(
                nodeID: error["node_id"]?.stringValue, classType: error["node_type"]?.stringValue,
                exceptionType: error["exception_type"]?.stringValue ?? "", message: error["exception_message"]?.stringValue ?? "")
        }
        if !nodeErrors.isEmpty && name != "execution_interrupted" && name != "execution_error" {
            outcome = .failed(.partial(nodeErrors))
            return
        }
        switch (statusString, name) {
        case ("success", _), (_, "execution_success"?):
            outcome = .success(outputs: files)
        case (_, "execution_interrupted"?):
            outcome = .interrupted(nodeID: data["node_id"]?.stringValue, classType: data["node_type"]?.stringValue)
        case ("error", _), (_, "execution_error"?):
            outcome = .failed(
                ExecutionFailure(
                    nodeID: data["node_id"]?.stringValue, classType: data["node_type"]?.stringValue,
                    exceptionType: data["exception_type"]?.stringValue ?? "",
                    message: data["exception_message"]?.stringValue ?? "the server recorded an error"))
        default:
            outcome = nil
        }
    }
}
