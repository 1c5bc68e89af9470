/// A starter hook script (`comfyq hook init`) with every hook stub uncommented, as a user who
/// wants them all would make it.
public func uncommentHookStubs(_ text: String) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
        for prefix in ["-- function ", "--   ", "-- end", "-- ---@"] where line.hasPrefix(prefix) { return String(line.dropFirst(3)) }
        return String(line)
    }.joined(separator: "\n")
}
