import ComfyClient
import ComfyCore
import Foundation
import Simulator
import TestSupport
import Testing
import Workloads
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The simulator's two ComfyUIs, in what differs between them (shared/comfyui/protocol-0.38.md),
/// and the client's view of each.
@Suite struct SimulatorProfileTests {
    static func id() -> String { UUID().uuidString.lowercased() }

    @Test func jobsAPIStatusesAndCancel() async throws {
        let fixture = try SimulatorFixture(profile: .v0_38) { options in
            options.instant()
            options.stepTime = 0.01
        }
        let api = fixture.api
        #expect(try await api.hasJobsAPI())
        #expect(try await api.probeFeatures() == ServerFeatures(version: "0.38.1", jobs: true))

        // A prompt held at its second step runs; two more wait behind it.
        _ = try await fixture.post("/sim/hold", ["at_step": 2, "seconds": 20])
        let running = Self.id()
        let waiting = [Self.id(), Self.id()]
        for promptID in [running] + waiting { _ = try await api.submit(Workloads.txt2img(steps: 4), promptID: promptID, clientID: "c") }
        _ = try await eventually("the first prompt to run") { try await api.state(of: running, jobs: true) == .running ? true : nil }
        #expect(try await api.state(of: waiting[0], jobs: true) == .queued)
        #expect(try await api.state(of: Self.id(), jobs: true) == .unknown)
        #expect(try await api.unfinished(jobs: true) == Set([running] + waiting))

        // One call takes the running one and a waiting one off; the other runs to its end.
        try await api.cancel([running, waiting[0]], jobs: true)
        _ = try await eventually("the last prompt to finish") {
            if case .ended(.success) = try await api.state(of: waiting[1], jobs: true) { return true }
            return nil
        }
        #expect(try await api.state(of: running, jobs: true) == .ended(.interrupted(nodeID: nil, classType: nil)))
        #expect(try await api.state(of: waiting[0], jobs: true) == .unknown, "a cancelled pending job never reaches history")
        let requests = (try await fixture.post("/sim/stats"))["requests"]?.objectValue ?? JSONObject()
        #expect(requests["POST /api/jobs/cancel"] == 1 && requests["POST /interrupt"] == nil)

        // The list filters by status; malformed ids are refused with the list of them.
        let (data, _) = try await URLSession(configuration: .ephemeral).data(from: URL(string: fixture.simulator.url + "/api/jobs?status=completed,cancelled")!)
        let list = try JSONValue(parsing: Array(data))
        #expect(Set(list["jobs"]?.arrayValue?.compactMap { $0["status"]?.stringValue } ?? []) == ["completed", "cancelled"])
        #expect(list["jobs"]?.arrayValue?.first { $0["id"]?.stringValue == waiting[1] }?["create_time"]?.numberValue != nil)
        let refused = try await fixture.post("/api/jobs/cancel", ["job_ids": ["not-a-uuid"]])
        #expect(refused["invalid_ids"] == ["not-a-uuid"])
    }

    @Test func aFailedJobCarriesItsError() async throws {
        let fixture = try SimulatorFixture(profile: .v0_38)
        _ = try await fixture.post("/sim/fail-node", ["class_type": "KSampler", "at_step": 1, "exception_type": "RuntimeError", "message": "boom"])
        let promptID = Self.id()
        _ = try await fixture.api.submit(Workloads.txt2img(), promptID: promptID, clientID: "c")
        let state = try await eventually("the prompt to fail") {
            let state = try await fixture.api.state(of: promptID, jobs: true)
            if case .ended = state { return state }
            return nil
        }
        #expect(state == .ended(.failed(ExecutionFailure(nodeID: "3", classType: "KSampler", exceptionType: "RuntimeError", message: "boom"))))
    }

    @Test(arguments: ComfyUIProfile.allCases)
    func whatEachVersionSays(_ profile: ComfyUIProfile) async throws {
        let fixture = try SimulatorFixture(profile: profile)
        let api = fixture.api
        #expect(try await api.systemStats().comfyUIVersion == profile.version)
        #expect(try await api.hasJobsAPI() == (profile == .v0_38))
        // 0.38 refuses prompt ids that are not canonical UUIDs; 0.3.64 takes anything.
        do {
            _ = try await api.submit(Workloads.txt2img(), promptID: "P-1", clientID: "c")
            #expect(profile == .v0_3_64, "0.38 took a malformed prompt id")
        } catch {
            guard case .rejected(let rejection) = error.kind else { throw error }
            #expect(profile == .v0_38 && rejection.type == "invalid_prompt_id", "\(rejection)")
        }
        // Output entries carry metadata on 0.38; the history's extra_data has create_time.
        let promptID = Self.id()
        let listener = try await fixture.listen(clientID: "c2")
        _ = try await api.submit(Workloads.txt2img(width: 64, height: 48), promptID: promptID, clientID: "c2")
        let messages = await listener.until(end: promptID)
        listener.close()
        let outputs = try #require(try await api.history(promptID)?.outputs)
        #expect(outputs.first?.media == (profile == .v0_38 ? OutputFile.Media(kind: "image", width: 64, height: 48) : nil))
        let features = try await fixture.post("/sim/stats")
        #expect(features["completed"]?.numberValue?.int ?? 0 >= 1)
        // The doctor names the API comfyq will use.
        let report = await Doctor.examine(api)
        let queue = try #require(report.checks.first { $0.name == "queue" })
        #expect(queue.detail.contains(profile == .v0_38 ? "jobs API" : "queue API"), "\(queue.detail)")
        #expect(report.passed, "\(report.checks)")
        _ = messages
    }
}
