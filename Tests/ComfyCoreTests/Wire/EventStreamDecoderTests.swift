import ComfyCore
import Testing

@Suite struct EventStreamDecoderTests {
    static func entry(_ node: String, _ value: Int, _ max: Int, _ state: String, prompt: String = "P") -> String {
        #""\#(node)":{"value":\#(value),"max":\#(max),"state":"\#(state)","node_id":"\#(node)","prompt_id":"\#(prompt)","display_node_id":"\#(node)","parent_node_id":null,"real_node_id":"\#(node)"}"#
    }

    static func map(_ entries: [String], prompt: String = "P") -> String {
        #"{"type":"progress_state","data":{"prompt_id":"\#(prompt)","nodes":{"# + entries.joined(separator: ",") + "}}}"
    }

    static func ids(_ event: ServerEvent) -> [String] {
        guard case .progressState(_, let nodes) = event else { return ["not progress_state"] }
        return nodes.map { "\($0.nodeID):\($0.state)" }
    }

    @Test func unchangedEntriesAreSkipped() throws {
        var decoder = EventStreamDecoder()
        let a = Self.entry("4", 1, 1, "finished")
        let b = Self.entry("5", 0, 1, "running")
        #expect(Self.ids(try decoder.decode(Self.map([a, b]))) == ["4:finished", "5:running"])
        // Same map again: nothing changed.
        #expect(Self.ids(try decoder.decode(Self.map([a, b]))) == [])
        // 5 finishes and 7 starts: only those two.
        let b2 = Self.entry("5", 1, 1, "finished")
        let c = Self.entry("7", 0, 1, "running")
        #expect(Self.ids(try decoder.decode(Self.map([a, b2, c]))) == ["5:finished", "7:running"])
        // A change in the first entry: everything from there.
        let a2 = Self.entry("4", 1, 1, "error")
        #expect(Self.ids(try decoder.decode(Self.map([a2, b2, c]))) == ["4:error", "5:finished", "7:running"])
        // Another prompt: parsed whole.
        #expect(Self.ids(try decoder.decode(Self.map([a], prompt: "Q"))) == ["4:finished"])
        // Entries removed (a shorter map): what remains after the change point.
        #expect(Self.ids(try decoder.decode(Self.map([], prompt: "Q"))) == [])
    }

    @Test func otherMessagesInBetweenDoNotDisturbIt() throws {
        var decoder = EventStreamDecoder()
        let a = Self.entry("4", 1, 1, "finished")
        _ = try decoder.decode(Self.map([a]))
        #expect(try decoder.decode(#"{"type":"progress","data":{"value":1,"max":2,"prompt_id":"P","node":"3"}}"#) == .progress(promptID: "P", node: "3", value: 1, max: 2))
        #expect(Self.ids(try decoder.decode(Self.map([a, Self.entry("3", 1, 2, "running")]))) == ["3:running"])
        decoder.reset()
        #expect(Self.ids(try decoder.decode(Self.map([a]))) == ["4:finished"])
    }

    @Test func malformedTailIsStillAnError() throws {
        var decoder = EventStreamDecoder()
        let a = Self.entry("4", 1, 1, "finished")
        _ = try decoder.decode(Self.map([a]))
        let broken = String(Self.map([a, Self.entry("5", 0, 1, "running")]).dropLast(5))
        #expect(throws: EventDecodingError.self) { try decoder.decode(broken) }
    }

    /// Stream and stateless decoding drive the engine to the same updates, on every recording and
    /// on a long generated run with entries changing at random places.
    @Test func sameOutcomeAsStatelessDecoding() throws {
        var streams: [[String]] = []
        for name in TraceCatalog.allTraceNames() {
            let lines = try Fixtures.trace(name).split(separator: "\n")
            streams.append(try lines.compactMap { try JSONValue(parsing: String($0))["ws"]?.serialized() })
        }
        var generator = SplitMix(seed: 42)
        var generated: [String] = []
        var entries: [(String, Int, Int, String)] = []
        for step in 0..<400 {
            switch generator.next() % 4 {
            case 0, 1: entries.append(("\(step)", 0, 1, "running"))
            case 2 where !entries.isEmpty:
                let index = Int(generator.next() % UInt64(entries.count))
                entries[index] = (entries[index].0, 1, 1, "finished")
            default: if !entries.isEmpty { entries.removeLast() }
            }
            generated.append(Self.map(entries.map { Self.entry($0.0, $0.1, $0.2, $0.3) }))
        }
        streams.append(generated)

        for messages in streams {
            var stream = EventStreamDecoder()
            var full = ProgressEngine()
            var incremental = ProgressEngine()
            let plan = PromptPlan(Fixtures.txt2img())
            for id in ["P"] + messages.compactMap({ try? ServerEventDecoder.decode($0).promptID }) {
                if !full.isTracking(id) {
                    full.track(id, plan: plan, at: 0)
                    incremental.track(id, plan: plan, at: 0)
                }
            }
            for (offset, message) in messages.enumerated() {
                let time = Double(offset)
                let a = full.receive(try ServerEventDecoder.decode(message), at: time)
                let b = incremental.receive(try stream.decode(message), at: time)
                #expect(a == b, "message \(offset): \(message.prefix(120))")
            }
        }
    }
}

/// A small deterministic generator for reproducible random tests.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
