import ComfyClient
import ComfyCore
import Testing

@testable import Runner

/// Which failures another attempt may mend (retried while the job's retries last), and what
/// each says.
@Suite struct ItemFailureTests {
    static let http500 = ComfyAPIError(server: "gpu0", request: "POST /prompt", kind: .httpStatus(500, "boom"))

    @Test(arguments: [
        (ItemFailure.serverError(http500), true, "gpu0: POST /prompt answered HTTP 500: boom"),
        (.interrupted, true, "interrupted on the server"),
        (.stalled(seconds: 600, server: "gpu0"), true, "stalled: no message for 600 s; interrupted on gpu0"),
        (.removedFromQueue, true, "removed from the server's queue"),
        (.noHistory(server: "gpu0", promptID: "p1"), true, "gpu0 reported success but its history has no result for p1"),
        (.execution(ExecutionFailure(nodeID: "3", classType: "KSampler", exceptionType: "RuntimeError", message: "CUDA out of memory")), false, nil),
        (.output("out/a.png: permission denied"), false, "out/a.png: permission denied"),
    ] as [(ItemFailure, Bool, String?)])
    func transientOrNot(failure: ItemFailure, transient: Bool, message: String?) {
        #expect(failure.isTransient == transient)
        if let message { #expect(failure.description == message) }
    }

    @Test func anExecutionErrorReachesOnErrorWithItsNode() {
        let failure = ItemFailure.execution(ExecutionFailure(nodeID: "3", classType: "KSampler", exceptionType: "RuntimeError", message: "oom"))
        #expect(failure.hookFailure.node == "3" && failure.hookFailure.exceptionType == "RuntimeError")
        #expect(ItemFailure.interrupted.hookFailure.node == nil)
    }
}
