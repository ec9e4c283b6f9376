// A few helpers for building DOM without a framework.

type Child = Node | string | number | null | undefined | false;

export interface Props {
  class?: string;
  text?: string;
  title?: string;
  id?: string;
  role?: string;
  tabIndex?: number;
  hidden?: boolean;
  /** `data-*` attributes (keys without the prefix). */
  data?: Readonly<Record<string, string>>;
  /** Other attributes, set as given. */
  attrs?: Readonly<Record<string, string>>;
  on?: { readonly [K in keyof HTMLElementEventMap]?: (event: HTMLElementEventMap[K]) => void };
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (props.class !== undefined) element.className = props.class;
  if (props.text !== undefined) element.textContent = props.text;
  if (props.title !== undefined) element.title = props.title;
  if (props.id !== undefined) element.id = props.id;
  if (props.role !== undefined) element.setAttribute('role', props.role);
  if (props.tabIndex !== undefined) element.tabIndex = props.tabIndex;
  if (props.hidden !== undefined) element.hidden = props.hidden;
  for (const [key, value] of Object.entries(props.data ?? {})) element.dataset[key] = value;
  for (const [key, value] of Object.entries(props.attrs ?? {})) element.setAttribute(key, value);
  for (const [type, listener] of Object.entries(props.on ?? {})) {
    element.addEventListener(type, listener as EventListener);
  }
  append(element, ...children);
  return element;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(
      typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child,
    );
  }
}

/** Replaces an element's children. */
export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, ...children);
}

/** A link to a route of the viewer (a hash), which keeps the browser's back button useful. */
export function link(text: string, hash: string, props: Props = {}): HTMLAnchorElement {
  return h('a', { ...props, attrs: { ...props.attrs, href: hash } }, text);
}
