/** The data model: schemas, validation, cross-object rules, the declarative document and its diff. */
export * from './account.js';
export * from './bgp.js';
export * from './config.js';
export * from './consistency.js';
export * from './errors.js';
export * from './firewall.js';
export * from './gre-tunnel.js';
export * from './ids.js';
export * from './ip.js';
export * from './node-config.js';
export * from './operations.js';
export * from './prefix.js';
export * from './registry.js';
export * from './route.js';
export * from './schemas.js';
export * from './settings.js';
export * from './shape.js';
