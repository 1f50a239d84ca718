// Hash routes: #/customers, #/customer/<id>, #/tasks, #/dashboard, #/member.
import { useEffect, useState } from "react";

export interface Route {
  page: string;
  id?: string;
}

export function parseRoute(hash: string): Route {
  const [, page = "", id] = hash.replace(/^#/, "").split("/");
  return { page: page || "customers", id: id ? decodeURIComponent(id) : undefined };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const changed = () => setRoute(parseRoute(location.hash));
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return route;
}
