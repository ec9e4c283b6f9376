import type { Route } from '../../model/routes';

/** Opens a route (a new entry in the browser's history). */
export type Navigate = (route: Route) => void;
