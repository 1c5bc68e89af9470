/// The frontend's dynamic prompts (`Comfy.DynamicPrompts`): comments removed, `{a|b|c}` replaced
/// by one choice (innermost first, so choices nest), then `\{ \} \|` made plain characters.
public enum DynamicPrompt {
    public static func process(_ text: String, choose: (Int) -> Int) -> String {
        var characters = Array(removingComments(text))
        while let close = unescaped("}", in: characters, from: 0),
            let open = (0..<close).last(where: { characters[$0] == "{" && !escaped(characters, $0) })
        {
            var options: [[Character]] = [[]]
            var index = open + 1
            while index < close {
                if characters[index] == "|" && !escaped(characters, index) {
                    options.append([])
                } else {
                    options[options.count - 1].append(characters[index])
                }
                index += 1
            }
            let pick = min(max(choose(options.count), 0), options.count - 1)
            characters.replaceSubrange(open...close, with: options[pick])
        }
        var result = ""
        var index = 0
        while index < characters.count {
            if characters[index] == "\\", index + 1 < characters.count, "{}|".contains(characters[index + 1]) {
                result.append(characters[index + 1])
                index += 2
            } else {
                result.append(characters[index])
                index += 1
            }
        }
        return result
    }

    /// `/* … */` anywhere and `// …` to the end of the line (which also cuts `https://…`).
    static func removingComments(_ text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let start = rest.firstIndex(of: "/") {
            let next = rest.index(after: start)
            guard next < rest.endIndex else { break }
            if rest[next] == "*", let end = rest[rest.index(after: next)...].range(of: "*/") {
                result += rest[..<start]
                rest = rest[end.upperBound...]
            } else if rest[next] == "/" {
                result += rest[..<start]
                rest = rest[(rest[next...].firstIndex(where: \.isNewline) ?? rest.endIndex)...]
            } else {
                result += rest[...start]
                rest = rest[next...]
            }
        }
        return result + rest
    }

    static func escaped(_ characters: [Character], _ index: Int) -> Bool { index > 0 && characters[index - 1] == "\\" }

    static func unescaped(_ character: Character, in characters: [Character], from start: Int) -> Int? {
        (start..<characters.count).first { characters[$0] == character && !escaped(characters, $0) }
    }
}

extension Substring {
    fileprivate func range(of needle: String) -> Range<Index>? {
        var index = startIndex
        while index < endIndex {
            if self[index...].starts(with: needle) { return index..<self.index(index, offsetBy: needle.count) }
            index = self.index(after: index)
        }
        return nil
    }
}

/// The frontend's file-name tokens (`Comfy.SaveImageExtraOutput`): `%Node.widget%` is a widget's
/// value on the first node whose "Node name for S&R" (else title) is `Node`, `%date:FMT%` the date.
/// Anything that does not resolve stays as written.
struct FilenameTokens {
    /// The classes whose `filename_prefix` goes through the replacement (frontend 1.58).
    static let classes: Set<String> = [
        "SaveImage", "SaveAnimatedWEBP", "SaveWEBM", "SaveAudio", "SaveGLB", "SaveAnimatedPNG", "CLIPSave", "VAESave", "ModelSave",
        "LoraSave", "SaveLatent", "SaveVideo", "SaveAudioMP3", "SaveAudioOpus", "SaveSVGNode", "SaveImageAdvanced", "SaveAudioAdvanced",
        "Save3DAdvanced", "SaveGaussianSplat", "SavePointCloud",
    ]

    let ui: UIWorkflow
    let definitions: NodeDefinitions
    let date: DateParts

    func apply(_ text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let start = rest.firstIndex(of: "%") {
            let after = rest.index(after: start)
            guard let end = rest[after...].firstIndex(of: "%") else { break }
            guard end > after else {
                result += rest[...start]
                rest = rest[after...]
                continue
            }
            result += rest[..<start]
            result += replacement(String(rest[after..<end])) ?? String(rest[start...end])
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }

    func replacement(_ token: String) -> String? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            if token.hasPrefix("date:") { return format(date: String(token.dropFirst(5))) }
            return nil
        }
        let nodes = allNodes()
        let name = String(parts[0])
        guard let node = nodes.first(where: { searchName($0) == name }) ?? nodes.first(where: { title($0) == name }),
            let value = widgetValue(node, String(parts[1]))
        else { return nil }
        let text: String
        switch value {
        case .string(let string): text = string
        case .number(let number): text = number.literal
        case .bool(let bool): text = bool ? "true" : "false"
        case .null: text = ""
        default: text = value.serialized()
        }
        return String(text.map { "/?<>\\:*|\"".contains($0) || ($0.asciiValue.map { $0 < 32 } ?? false) ? "_" : $0 })
    }

    /// Every node, a subgraph's inner nodes before the instance node.
    func allNodes() -> [UINode] {
        func walk(_ graph: UIGraph, depth: Int) -> [UINode] {
            graph.nodes.flatMap { node -> [UINode] in
                guard depth < 16, let subgraph = ui.subgraphs[node.type] else { return [node] }
                return walk(subgraph, depth: depth + 1) + [node]
            }
        }
        return walk(ui.root, depth: 0)
    }

    /// The frontend gives every node but a save node the property, set to its type.
    func searchName(_ node: UINode) -> String? {
        node.properties["Node name for S&R"]?.stringValue ?? (Self.classes.contains(node.type) ? nil : node.type)
    }

    func title(_ node: UINode) -> String {
        node.title ?? definitions[node.type]?.title ?? node.type
    }

    func widgetValue(_ node: UINode, _ name: String) -> JSONValue? {
        guard let definition = definitions[node.type], let index = definition.widgets.firstIndex(where: { $0.name == name }) else { return nil }
        let slots = definition.widgets.indices.filter { definition.widgets[$0].savedInWorkflow }
        guard let position = slots.firstIndex(of: index), let value = node.widgetsValues?[safe: position] else {
            return definition.widgets[index].defaultValue
        }
        return value
    }

    func format(date format: String) -> String {
        let fields: [(String, String)] = [
            ("yyyy", String(date.year)), ("yy", pad(date.year % 100)), ("MM", pad(date.month)), ("M", String(date.month)),
            ("dd", pad(date.day)), ("d", String(date.day)), ("hh", pad(date.hour)), ("h", String(date.hour)),
            ("mm", pad(date.minute)), ("m", String(date.minute)), ("ss", pad(date.second)), ("s", String(date.second)),
        ]
        var result = ""
        var rest = Substring(format)
        outer: while !rest.isEmpty {
            for (pattern, value) in fields where rest.hasPrefix(pattern) {
                result += value
                rest = rest.dropFirst(pattern.count)
                continue outer
            }
            result.append(rest.removeFirst())
        }
        return result
    }

    func pad(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }
}
