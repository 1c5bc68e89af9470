import CLuaShim

/// The Lua comfyq runs hooks with (`Lua 5.4.4`), for `comfyq --version --verbose` and `doctor`.
public enum LuaRelease {
    public static var version: String { String(cString: comfyq_lua_release()) }
}
