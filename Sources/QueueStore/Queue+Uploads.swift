/// Input files uploaded to servers: what each server's input folder holds of ours, by content
/// (a file's SHA-256, with a mask's appended), so a file is uploaded once per server however
/// many items, retries and runs use it.
extension Queue {
    /// What `server`'s input folder calls the content `key` (the value for a `LoadImage`
    /// input, `comfyq/NAME`), if it was uploaded there.
    public func uploaded(server: String, key: String) throws -> String? {
        try database.query("SELECT value FROM uploads WHERE server = ? AND sha256 = ?", [.text(server), .text(key)]).first?[0].text
    }

    public func recordUpload(server: String, key: String, value: String, size: Int64, now: Double) throws {
        try database.query(
            """
            INSERT INTO uploads (server, sha256, value, size, uploaded_at) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (server, sha256) DO UPDATE SET value = excluded.value, size = excluded.size, uploaded_at = excluded.uploaded_at
            """,
            [.text(server), .text(key), .text(value), .integer(size), .real(now)])
    }

    /// The server lost its input folder (a refused prompt names one of our files): upload again.
    public func forgetUploads(server: String) throws {
        try database.query("DELETE FROM uploads WHERE server = ?", [.text(server)])
    }

    /// How many uploads are recorded for `server` (for tests and status).
    public func uploadCount(server: String) throws -> Int {
        Int(try database.query("SELECT COUNT(*) FROM uploads WHERE server = ?", [.text(server)]).first?[0].int ?? 0)
    }
}
