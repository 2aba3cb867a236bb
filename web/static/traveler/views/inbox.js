// The traveler's inbox: the shared inbox view.
export { default } from '../../common/inbox.js';
