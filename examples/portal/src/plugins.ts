// The plugins the server runs, from serverInfo: a page shows a plugin's section only when it is on.
import { createContext, useContext } from "react";

export const PluginsContext = createContext<ReadonlySet<string>>(new Set());
export const usePlugins = (): ReadonlySet<string> => useContext(PluginsContext);
