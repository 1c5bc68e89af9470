import Foundation

/// The morning review's judgements: a finished picture starred, rejected, or not rated.
extension Queue {
    /// Rates these items of a job (`nil`: clears the rating). Only finished pictures (done items)
    /// are rated; returns the indices that are not done, which are left alone (nothing is
    /// changed when any of the indices is not in the job).
    @discardableResult
    public func rate(jobID: Int64, indices: [Int], as rating: Rating?) throws -> (rated: Int, notDone: [Int]) {
        guard !indices.isEmpty else { return (0, []) }
        return try database.transaction {
            let marks = Array(repeating: "?", count: indices.count).joined(separator: ", ")
            let rows = try database.query(
                "SELECT idx, state FROM items WHERE job_id = ? AND idx IN (\(marks))", [.integer(jobID)] + indices.map { .integer(Int64($0)) })
            let states = Dictionary(rows.compactMap { row in row[0].int.map { (Int($0), row[1].text ?? "") } }, uniquingKeysWith: { first, _ in first })
            if let missing = indices.first(where: { states[$0] == nil }) {
                throw QueueError(message: "job #\(jobID) has no item \(missing)")
            }
            let done = indices.filter { states[$0] == ItemState.done.rawValue }
            let notDone = indices.filter { states[$0] != ItemState.done.rawValue }
            guard !done.isEmpty else { return (0, notDone) }
            let doneMarks = Array(repeating: "?", count: done.count).joined(separator: ", ")
            try database.query(
                "UPDATE items SET rating = ?, updated_at = ? WHERE job_id = ? AND idx IN (\(doneMarks))",
                [rating.map { .text($0.rawValue) } ?? .null, .real(Date().timeIntervalSince1970), .integer(jobID)] + done.map { .integer(Int64($0)) })
            return (done.count, notDone)
        }
    }

    /// The indices of a job's items with this rating, in order.
    public func rated(jobID: Int64, _ rating: Rating) throws -> [Int] {
        try database.query("SELECT idx FROM items WHERE job_id = ? AND rating = ? ORDER BY idx", [.integer(jobID), .text(rating.rawValue)])
            .compactMap { $0[0].int.map(Int.init) }
    }
}
