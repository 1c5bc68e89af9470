import ComfyCore
import Testing

@Suite struct ServerEventDecoderTests {
    @Test(arguments: [
        (
            #"{"type":"status","data":{"status":{"exec_info":{"queue_remaining":2}},"sid":"abc"}}"#,
            ServerEvent.status(queueRemaining: 2, sid: "abc")
        ),
        (#"{"type":"execution_start","data":{"prompt_id":"P","timestamp":1}}"#, .executionStart(promptID: "P")),
        (
            #"{"type":"execution_cached","data":{"nodes":["4","5"],"prompt_id":"P","timestamp":1}}"#,
            .executionCached(promptID: "P", nodes: ["4", "5"])
        ),
        (
            #"{"type":"executing","data":{"node":"3","display_node":"3","prompt_id":"P"}}"#,
            .executing(promptID: "P", node: "3", displayNode: "3")
        ),
        (#"{"type":"executing","data":{"node":"8"}}"#, .executing(promptID: nil, node: "8", displayNode: nil)),
        (#"{"type":"executing","data":{"node":null,"prompt_id":"P"}}"#, .executing(promptID: "P", node: nil, displayNode: nil)),
        (
            #"{"type":"progress","data":{"value":3,"max":20,"prompt_id":"P","node":"3"}}"#,
            .progress(promptID: "P", node: "3", value: 3, max: 20)
        ),
        (
            #"{"type":"executed","data":{"node":"9","display_node":"9","output":{"images":[{"filename":"a.png","subfolder":"s","type":"output"}]},"prompt_id":"P"}}"#,
            .executed(promptID: "P", node: "9", outputs: [OutputFile(filename: "a.png", subfolder: "s")])
        ),
        (#"{"type":"executed","data":{"node":"9","output":null,"prompt_id":"P"}}"#, .executed(promptID: "P", node: "9", outputs: [])),
        (#"{"type":"execution_success","data":{"prompt_id":"P","timestamp":1}}"#, .executionSuccess(promptID: "P")),
        (
            #"{"type":"execution_interrupted","data":{"prompt_id":"P","node_id":"3","node_type":"KSampler","executed":[],"timestamp":1}}"#,
            .executionInterrupted(promptID: "P", nodeID: "3", classType: "KSampler")
        ),
        (#"{"type":"crystools.monitor","data":{"cpu":3}}"#, .unknown(type: "crystools.monitor")),
        (#"{"data":{"prompt_id":"P"},"type":"execution_start"}"#, .executionStart(promptID: "P")),
        (#"{"type":"logs","data":{"entries":[],"size":null},"extra":1}"#, .unknown(type: "logs")),
    ])
    func decodes(text: String, expected: ServerEvent) throws {
        #expect(try ServerEventDecoder.decode(text) == expected)
    }

    @Test func decodesProgressStateEntries() throws {
        let text = """
            {"type":"progress_state","data":{"prompt_id":"P","nodes":{
            "4":{"value":1.0,"max":1.0,"state":"finished","node_id":"4","prompt_id":"P","display_node_id":"4","parent_node_id":null,"real_node_id":"4"},
            "3":{"value":2,"max":4,"state":"running","node_id":"3","prompt_id":"P","display_node_id":"3","parent_node_id":null,"real_node_id":"3"}}}}
            """
        let event = try ServerEventDecoder.decode(text)
        #expect(
            event
                == .progressState(
                    promptID: "P",
                    nodes: [
                        NodeProgress(nodeID: "4", displayNodeID: "4", realNodeID: "4", value: 1, max: 1, state: .finished),
                        NodeProgress(nodeID: "3", displayNodeID: "3", realNodeID: "3", value: 2, max: 4, state: .running),
                    ]))
    }

    @Test func decodesExecutionErrorSkippingTheBulk() throws {
        let text = """
            {"type":"execution_error","data":{"prompt_id":"P","node_id":"12","node_type":"FakeSampler","executed":["3"],
            "exception_message":"boom\\n","exception_type":"RuntimeError","traceback":["a","b"],
            "current_inputs":{"x":["{'samples': tensor([[1]])}"]},"current_outputs":["1"],"timestamp":5}}
            """
        let event = try ServerEventDecoder.decode(text)
        let failure = ExecutionFailure(nodeID: "12", classType: "FakeSampler", exceptionType: "RuntimeError", message: "boom\n")
        #expect(event == .executionError(promptID: "P", failure: failure))
    }

    @Test(arguments: [
        (#"{"type":"progress","data":{"max":4}}"#, EventDecodingError.missingField(type: "progress", field: "value")),
        (#"{"type":"execution_start","data":{}}"#, .missingField(type: "execution_start", field: "prompt_id")),
        (#"{"data":{}}"#, .missingType),
        (#"[1]"#, .notAnObject),
    ])
    func reportsWhatIsMissing(text: String, expected: EventDecodingError) {
        #expect(throws: expected) { try ServerEventDecoder.decode(text) }
    }

    @Test func malformedJSONIsATypedError() {
        #expect {
            try ServerEventDecoder.decode(#"{"type":"progress","data":{"value":"#)
        } throws: { error in
            guard case .malformedJSON? = error as? EventDecodingError else { return false }
            return true
        }
    }

    @Test func decodesEveryMessageOfEveryTrace() throws {
        var decoded = 0
        for name in TraceCatalog.allTraceNames() {
            for line in try Fixtures.trace(name).split(separator: "\n") {
                let value = try JSONValue(parsing: String(line))
                guard let message = value["ws"] else { continue }
                _ = try ServerEventDecoder.decode(message.serialized())
                decoded += 1
            }
        }
        #expect(decoded > 250)
    }

    @Test func binaryHeaders() {
        let jpeg: [UInt8] = [0, 0, 0, 1, 0, 0, 0, 1, 0xFF, 0xD8]
        #expect(BinaryMessage.parse(jpeg) == .previewImage(imageType: 1, payloadOffset: 8))
        let text: [UInt8] = [0, 0, 0, 3, 0, 0, 0, 2] + Array("12".utf8) + Array("fake step 1/5".utf8)
        #expect(BinaryMessage.parse(text) == .text(nodeID: "12", text: "fake step 1/5"))
        #expect(BinaryMessage.parse([0, 0, 0, 3, 0, 0, 0, 9, 1]) == nil)
        #expect(BinaryMessage.parse([0, 0]) == nil)
    }
}
