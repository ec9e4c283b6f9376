import './style.css';
import { App } from './ui/app';

const root = document.getElementById('app');
if (!root) throw new Error('index.html has no #app');
const app = new App(root);
app.start().catch((error: unknown) => {
  root.textContent = `The viewer could not start: ${error instanceof Error ? error.message : String(error)}`;
});
