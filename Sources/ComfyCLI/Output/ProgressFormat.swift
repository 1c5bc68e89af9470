import ComfyCore

/// How progress updates are shown: text for people, JSON lines (schema 1) for programs.
enum ProgressFormat {
    /// The first 8 characters of a prompt id, enough to tell prompts apart on screen.
    static func shortID(_ id: String) -> String { String(id.prefix(8)) }

    /// `KSampler #3` or `Positive prompt #6 (CLIPTextEncode)`.
    static func describe(_ node: NodeRef?) -> String {
        guard let node else { return "" }
        switch (node.title, node.classType) {
        case (let title?, let classType?) where title != classType: return "\(title) #\(node.id) (\(classType))"
        case (_, let classType?): return "\(classType) #\(node.id)"
        default: return "#\(node.id)"
        }
    }

    static func textLine(_ update: ProgressUpdate, time: Double) -> String {
        let snapshot = update.snapshot
        let stamp = pad(formatFixed(time, decimals: 3), 8, right: true)
        var line = "\(stamp)  \(shortID(snapshot.promptID))  "
        if let transition = update.transition {
            line += "\(transition.from) → \(transition.to)"
            switch snapshot.outcome {
            case .failed(let failure)?: return line + "  \(failure)"
            case .interrupted(let node?)?: return line + "  at \(describe(node))"
            case .some: return line
            case nil: line += "  "
            }
        } else {
            line += pad(snapshot.phase.rawValue, 9) + " "
        }
        return line + details(snapshot)
    }

    /// `sampler 1/2  step 3/4   44%  KSampler #3`
    static func details(_ snapshot: ProgressSnapshot) -> String {
        var line = ""
        if snapshot.phase == .sampling {
            line += "sampler \(snapshot.sampler)/\(snapshot.samplers)  step \(snapshot.step)/\(snapshot.steps)  "
        }
        line += pad("\(snapshot.percent)%", 4, right: true)
        let node = describe(snapshot.node)
        if !node.isEmpty { line += "  \(node)" }
        return line
    }

    /// `{"t","prompt_id","phase","node","sampler","samplers","step","steps","fraction","event"}`,
    /// plus `from`/`to` for transitions and `error` for failures.
    static func jsonLine(_ update: ProgressUpdate, time: Double) -> String {
        let snapshot = update.snapshot
        var object = JSONObject()
        object["schema"] = 1
        object["t"] = .number(JSONNumber(literal: formatFixed(time, decimals: 4)))
        object["prompt_id"] = .string(snapshot.promptID)
        object["event"] = update.transition == nil ? "progress" : "transition"
        object["phase"] = .string(snapshot.phase.rawValue)
        object["node"] = snapshot.node.map { .string($0.id) } ?? .null
        object["class_type"] = snapshot.node?.classType.map { .string($0) } ?? .null
        object["sampler"] = .int(snapshot.sampler)
        object["samplers"] = .int(snapshot.samplers)
        object["step"] = .int(snapshot.step)
        object["steps"] = .int(snapshot.steps)
        object["fraction"] = .number(JSONNumber(literal: formatFixed(snapshot.fraction, decimals: 4)))
        if let transition = update.transition {
            object["from"] = .string(transition.from.rawValue)
            object["to"] = .string(transition.to.rawValue)
        }
        if case .failed(let failure)? = snapshot.outcome {
            object["error"] = [
                "message": .string(failure.message),
                "node": failure.nodeID.map { .string($0) } ?? .null,
                "class_type": failure.classType.map { .string($0) } ?? .null,
                "exception_type": .string(failure.exceptionType),
            ]
        }
        return JSONValue.object(object).serialized()
    }

    /// `value` with exactly `decimals` digits after the point, without Foundation's locale.
    static func formatFixed(_ value: Double, decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = Int(scaled / scale)
        var fraction = String(Int(scaled) - whole * Int(scale))
        fraction = String(repeating: "0", count: max(0, decimals - fraction.count)) + fraction
        let sign = value < 0 && scaled != 0 ? "-" : ""
        return decimals == 0 ? "\(sign)\(whole)" : "\(sign)\(whole).\(fraction)"
    }

    static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return right ? padding + text : text + padding
    }
}
