/// Where comfyq keeps the user's files, after the XDG base directories (an empty variable
/// counts as unset, as the specification says).
public enum UserFolders {
    /// `$XDG_STATE_HOME/comfyq`, else `~/.local/state/comfyq`: the queue, server logs and locks.
    public static func state(environment: [String: String], home: String) -> String {
        (environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.local/state") + "/comfyq"
    }

    /// `$XDG_CONFIG_HOME/comfyq`, else `~/.config/comfyq`: the servers file and hook scripts.
    public static func config(environment: [String: String], home: String) -> String {
        (environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.config") + "/comfyq"
    }
}
