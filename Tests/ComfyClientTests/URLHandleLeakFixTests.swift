import ComfyClient
import Foundation
import TestSupport
import Testing

/// FoundationNetworking leaks a parsed URL handle on every request on Linux (see
/// Sources/CCurlFix/curlfix.c); the fix releases each one. These requests must go through it.
@Suite struct URLHandleLeakFixTests {
    @Test func everyRequestsURLHandleIsReleased() async throws {
        #if os(Linux)
        try await ComfyAPITests.withServer { api in
            let before = URLHandleLeakFix.counts
            for _ in 0..<50 { _ = try await api.queueRemaining() }
            let after = URLHandleLeakFix.counts
            // At least one handle per request, each released on FoundationNetworking's behalf
            // (other tests' requests may add to the counts, never take from them).
            #expect(after.made - before.made >= 50, "handles made: \(before) → \(after)")
            #expect(after.released - before.released >= 50, "released: \(before) → \(after); is the fix interposed (nm -D)?")
            // What is alive is what requests under way hold: a handful, not one per request ever made.
            #expect(after.alive < 50, "alive: \(after.alive)")
        }
        #endif
    }
}
