import Foundation
import Testing

@testable import Runner

/// The C-library dates say what Foundation's formatters say, at instants across the year.
@Suite struct TimestampsTests {
    @Test(arguments: [0.0, 1_764_860_243.9, 1_709_251_199, 1_735_689_599.5, 951_782_400, 4_102_444_800])
    func theSameAsFoundation(seconds: Double) {
        let date = Date(timeIntervalSince1970: seconds)
        #expect(Timestamps.iso8601UTC(date) == ISO8601DateFormatter().string(from: date))
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd"
        formatter.locale = Locale(identifier: "en_US_POSIX")
        #expect(Timestamps.localDay(date) == formatter.string(from: date))
    }
}
