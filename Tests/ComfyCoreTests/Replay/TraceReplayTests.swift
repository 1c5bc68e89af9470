import ComfyCore
import Foundation
import Testing

/// What each recording must end in. A new trace in shared/ fails `everyTraceIsListed` until its
/// expected outcome is written here.
enum TraceCatalog {
    static let expected: [String: [Phase]] = [
        "txt2img.jsonl": [.done],
        "txt2img-cached.jsonl": [.done],
        "txt2img-gpu-warm.jsonl": [.done],
        "two-samplers.jsonl": [.done],
        "previews.jsonl": [.done],
        "runtime-error.jsonl": [.failed],
        "interrupted.jsonl": [.interrupted],
        "queue-ops.jsonl": [.interrupted, .cancelled, .done],
        "validation-error.jsonl": [],
    ]

    static func allTraceNames() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Fixtures.tracesDirectory.path)) ?? []
        return names.filter { $0.hasSuffix(".jsonl") }.sorted()
    }
}

@Suite struct TraceReplayTests {
    static func replay(_ name: String) throws -> (TraceReplay, [TraceReplay.Record]) {
        var replay = TraceReplay()
        var records: [TraceReplay.Record] = []
        for (offset, line) in try Fixtures.trace(name).split(separator: "\n", omittingEmptySubsequences: false)
            .enumerated()
        {
            records += try replay.feed(line: String(line), number: offset + 1)
        }
        return (replay, records)
    }

    @Test func everyTraceIsListed() {
        let names = TraceCatalog.allTraceNames()
        #expect(names.count >= 9)
        for name in names { #expect(TraceCatalog.expected[name] != nil, "no expected outcome for \(name)") }
    }

    @Test(arguments: TraceCatalog.expected.keys.sorted())
    func replaysToTheRightFinalState(name: String) throws {
        let (replay, records) = try Self.replay(name)
        let expected = try #require(TraceCatalog.expected[name])
        let finals = replay.submitted.map { id in replay.finished.first { $0.promptID == id }?.phase }
        #expect(finals == expected.map { Optional($0) })
        #expect(replay.engine.trackedCount == 0)

        // Per prompt: fraction never decreases, phases never go back, done only at the end.
        for id in replay.submitted {
            let mine = records.filter { $0.update.snapshot.promptID == id }.map(\.update)
            let fractions = mine.map(\.snapshot.fraction)
            #expect(fractions == fractions.sorted(), "\(name) \(id)")
            let ranks = mine.map(\.snapshot.phase.rank)
            #expect(ranks == ranks.sorted(), "\(name) \(id)")
            #expect(mine.dropLast().allSatisfy { !$0.snapshot.phase.isTerminal })
        }
    }

    /// The origin bug on the real recording: every setup node reads 1/1 right before KSampler starts.
    @Test func txt2imgNeverReportsCompleteBeforeSampling() throws {
        let (_, records) = try Self.replay("txt2img.jsonl")
        let beforeSampling = records.prefix { $0.update.snapshot.phase != .sampling }
        #expect(!beforeSampling.isEmpty)
        #expect(beforeSampling.allSatisfy { $0.update.snapshot.fraction < 0.11 })
        let sampling = records.filter { $0.update.snapshot.phase == .sampling }.map(\.update.snapshot.step)
        #expect(Array(Set(sampling)).sorted() == [1, 2, 3, 4])
    }

    @Test func twoSamplersRestartStepsOnTheSecondSampler() throws {
        let (_, records) = try Self.replay("two-samplers.jsonl")
        let pairs = records.map(\.update.snapshot).filter { $0.phase == .sampling }.map { "\($0.sampler)/\($0.samplers):\($0.step)/\($0.steps)" }
        var distinct: [String] = []
        for pair in pairs where distinct.last != pair { distinct.append(pair) }
        // "2/2:0/3": KSampler 11 has started but is still loading (the 2.4 s before its first step).
        #expect(distinct == ["1/2:1/4", "1/2:2/4", "1/2:3/4", "1/2:4/4", "2/2:0/3", "2/2:1/3", "2/2:2/3", "2/2:3/3"])
    }

    @Test func runtimeErrorCarriesTheFailure() throws {
        let (replay, _) = try Self.replay("runtime-error.jsonl")
        let final = try #require(replay.finished.first)
        guard case .failed(let failure)? = final.outcome else {
            Issue.record("expected a failure, got \(String(describing: final.outcome))")
            return
        }
        #expect(failure.nodeID == "12")
        #expect(failure.classType == "FakeSampler")
        #expect(failure.exceptionType == "RuntimeError")
        #expect(failure.message.hasPrefix("FakeSampler failed on purpose at step 3"))
    }

    @Test func malformedLineNamesItsNumber() {
        var replay = TraceReplay()
        #expect(throws: TraceError(line: 7, reason: "malformed JSON: unexpected end of JSON at byte 9")) {
            try replay.feed(line: #"{"t": 1, "#, number: 7)
        }
        #expect(throws: TraceError(line: 2, reason: "no \"t\" field")) {
            try replay.feed(line: #"{"note": "x"}"#, number: 2)
        }
    }

    @Test func unknownTypesAreCounted() throws {
        var replay = TraceReplay()
        _ = try replay.feed(line: #"{"t": 0, "ws": {"type": "crystools.monitor", "data": {}}}"#, number: 1)
        _ = try replay.feed(line: #"{"t": 0, "ws": {"type": "crystools.monitor", "data": {}}}"#, number: 2)
        #expect(replay.skippedTypes == ["crystools.monitor": 2])
    }
}
